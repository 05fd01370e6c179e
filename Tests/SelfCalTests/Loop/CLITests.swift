import Foundation
import Imaging
import Testing

@testable import SelfCal

/// The command line as a user runs it: exit codes, messages, and nothing written on bad input.
@Suite("Command line", .serialized)
struct CLITests {
    /// Runs selfcal, expecting `code`, a message containing `mentions`, and `unwritten` absent.
    func expectFailure(_ args: [String], code: Int32, mentions: String, unwritten: String? = nil,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try TestSupport.selfcal(args)
        #expect(r.status == code, "exit \(r.status), output: \(r.output)", sourceLocation: sourceLocation)
        #expect(r.output.contains(mentions), "message should mention '\(mentions)': \(r.output)", sourceLocation: sourceLocation)
        #expect(r.output.contains("selfcal: error:"), sourceLocation: sourceLocation)
        if let unwritten {
            #expect(!FileManager.default.fileExists(atPath: unwritten), "\(unwritten) was written", sourceLocation: sourceLocation)
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func badMeasurementSetsExitThree() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let table = dir.appendingPathComponent("out.G").path
        try expectFailure(["solve", "/nonexistent/x.ms", "--table", table], code: 3, mentions: "/nonexistent/x.ms", unwritten: table)
        let notTable = dir.appendingPathComponent("plain.ms")
        try FileManager.default.createDirectory(at: notTable, withIntermediateDirectories: true)
        try expectFailure(["solve", notTable.path, "--table", table], code: 3, mentions: "not a casacore table", unwritten: table)
        let vla = try TestSupport.vlaMS(in: dir)
        try expectFailure(["solve", vla, "--refant", "15", "--table", table], code: 3, mentions: "MODEL_DATA", unwritten: table)

        // A read-only MS opened for writing: refused, and not one byte changes.
        try TestSupport.run("/bin/chmod", ["-R", "a-w", vla])
        let sum = { try TestSupport.run("/bin/sh", ["-c", "cd '\(vla)' && find . -type f | sort | xargs md5sum | md5sum"]).output }
        let before = try sum()
        try expectFailure(["predict", vla, "--component", "0,10,1"], code: 3, mentions: "read-only")
        #expect(try sum() == before)
    }

    @Test(.timeLimit(.minutes(2)))
    func solveBadInputs() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let ms = dir.appendingPathComponent("s.ms").path
        var r = try TestSupport.selfcal(["simulate", "--out", ms, "--integrations", "4"])
        #expect(r.status == 0, "\(r.output)")
        r = try TestSupport.selfcal(["predict", ms, "--component", "202.7845,30.5092,4"])
        #expect(r.status == 0, "\(r.output)")
        let table = dir.appendingPathComponent("out.G").path
        try expectFailure(["solve", ms, "--refant", "ant99", "--table", table], code: 2, mentions: "ant99", unwritten: table)
        try expectFailure(["solve", ms, "--solint", "fortnight", "--table", table], code: 2, mentions: "fortnight", unwritten: table)
        let junk = dir.appendingPathComponent("junk.G").path
        try "not a table".write(toFile: junk, atomically: true, encoding: .utf8)
        try expectFailure(["solve", ms, "--pre-apply", junk, "--table", table], code: 3, mentions: "junk.G", unwritten: table)

        // All data flagged.
        let flagged = dir.appendingPathComponent("flagged.ms").path
        try TestSupport.run("/bin/cp", ["-r", ms, flagged])
        var py = try TestSupport.python("""
            import casacore.tables as pt, numpy as np
            t = pt.table('\(flagged)', readonly=False, ack=False)
            t.putcol('FLAG', np.ones(t.getcol('FLAG').shape, bool)); t.close(); print('OK')
            """)
        #expect(py.output.contains("OK"), "\(py.output)")
        try expectFailure(["solve", flagged, "--table", table], code: 3, mentions: "flagged", unwritten: table)

        // An empty selection: only autocorrelations left.
        let autos = dir.appendingPathComponent("autos.ms").path
        py = try TestSupport.python("""
            import casacore.tables as pt
            t = pt.table('\(ms)', ack=False)
            t.query('ANTENNA1 == ANTENNA2').copy('\(autos)', deep=True); print('OK')
            """)
        #expect(py.output.contains("OK"), "\(py.output)")
        try expectFailure(["solve", autos, "--table", table], code: 3, mentions: "no cross-correlation", unwritten: table)

        // And the good case writes a table that apply accepts.
        r = try TestSupport.selfcal(["solve", ms, "--calmode", "ap", "--solint", "inf", "--refant", "1", "--table", table])
        #expect(r.status == 0, "\(r.output)")
        try expectFailure(["solve", ms, "--table", table], code: 2, mentions: "already exists")
        r = try TestSupport.selfcal(["apply", ms, "--table", table])
        #expect(r.status == 0, "\(r.output)")
        try expectFailure(["apply", ms], code: 2, mentions: "--table")
        // solve --apply: one command, CORRECTED_DATA written in the solving pass for solint int.
        let both = dir.appendingPathComponent("both.G").path
        r = try TestSupport.selfcal(["solve", ms, "--refant", "1", "--table", both, "--apply"])
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output.contains("wrote CORRECTED_DATA: \(try MeasurementSet(path: ms).rowCount) rows in the solving pass, 0 in a second pass"), "\(r.output)")
        // ArgumentParser's own usage errors exit 2 too.
        let usage = try TestSupport.selfcal(["solve", ms, "--minsnr", "lots", "--table", table])
        #expect(usage.status == 2, "\(usage.output)")
        #expect(usage.output.contains("--minsnr"))
    }

    /// WSClean images a simulated `small` MS with every source within one pixel of its true
    /// position, found through our own WCS: catches a wrong visibility sign or UVW frame.
    @Test(.timeLimit(.minutes(3)))
    func wscleanPutsSimulatedSourcesWhereTheyAre() throws {
        guard TestSupport.which("wsclean") != nil else {
            Issue.record("wsclean is not installed (scripts/install-deps.sh installs it)")
            return
        }
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let ms = dir.appendingPathComponent("s.ms").path
        let r = try TestSupport.selfcal(["simulate", "--out", ms, "--no-gains", "--noise-jy", "0.01"])
        #expect(r.status == 0, "\(r.output)")
        let truth = try SimulationTruth.load(ms + ".truth.json")
        let name = dir.appendingPathComponent("img").path
        // Natural weighting: with uniform weighting, clean on this sparse 16-antenna snapshot
        // leaves the faintest source's components smeared ~1.5 pixels along a PSF sidelobe
        // (seen with WSClean 3.1); a single source images exactly either way.
        let w = try TestSupport.run("wsclean", ["-quiet", "-size", "512", "512", "-scale", "10asec", "-niter", "10000", "-mgain", "0.8",
                                                "-auto-threshold", "1", "-weight", "natural", "-name", name, ms], timeout: 150)
        #expect(w.status == 0, "\(w.output.suffix(1500))")
        let img = try FITSImage.read(path: name + "-image.fits")
        let model = try FITSImage.read(path: name + "-model.fits")
        let wcs = try img.wcs()
        for s in truth.sources {
            let p = try wcs.worldToPixel(raDeg: s.ra * 180 / .pi, decDeg: s.dec * 180 / .pi)
            let (cx, cy) = (Int(p.x.rounded()), Int(p.y.rounded()))
            // Where the clean components near the true position sit (their flux-weighted centroid),
            // and the restored image's peak there.
            var sum = 0.0, sx = 0.0, sy = 0.0
            var peak = -Float.infinity
            for y in (cy - 4)...(cy + 4) {
                for x in (cx - 4)...(cx + 4) {
                    let m = Double(model[x: x, y: y])
                    if m > 0 { sum += m; sx += m * Double(x); sy += m * Double(y) }
                    peak = max(peak, img[x: x, y: y])
                }
            }
            #expect(sum > 0.5 * s.flux, "\(s.name): clean found \(sum) Jy of \(s.flux) near its position")
            let (mx, my) = (sx / sum, sy / sum)
            #expect(abs(mx - p.x) <= 1.0 && abs(my - p.y) <= 1.0, "\(s.name): components at (\(mx), \(my)), true (\(p.x), \(p.y))")
            #expect(abs(Double(peak) - s.flux(at: 1.35e9 + 3.5 * 12.5e6)) < 0.15 * s.flux, "\(s.name): peak \(peak) Jy vs \(s.flux)")
        }
    }
}
