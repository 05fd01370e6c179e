import Foundation
import Imaging
import Testing

@testable import SelfCal
import SelfCalSupport

/// Measurement Set access and `simulate`: what is written is what is read, by us and by casacore.
@Suite("Measurement Set access and simulate", .serialized)
struct MSTests {
    /// Reads a simulated MS back through the Swift API and checks shapes, frequencies, antenna
    /// positions and every visibility against an independent direct evaluation from the truth.
    @Test(.timeLimit(.minutes(2)))
    func simulatedMSReadsBackAsWritten() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let path = dir.appendingPathComponent("sim.ms").path
        var o = SimulationOptions(preset: .small)
        o.noiseJy = 0
        o.seed = 7
        let result = try Simulator.run(msPath: path, options: o)
        let truth = try SimulationTruth.load(result.truthPath)

        let ms = try MeasurementSet(path: path)
        #expect(ms.antennas.count == 16)
        #expect(ms.antennas.map(\.name) == truth.antennaNames)
        let g = Simulator.geometry(o)
        let expected = Simulator.itrf(g.antennaENU, lat: Simulator.ovro.lat, lon: Simulator.ovro.lon, height: Simulator.ovro.height)
        for (a, e) in zip(ms.antennas, expected) { #expect(((a.position - e) * (a.position - e)).sum() < 1e-12) }
        // OVRO is about 6.37e6 m from the geocentre.
        let r = (ms.antennas[0].position * ms.antennas[0].position).sum().squareRoot()
        #expect(abs(r - 6.37e6) < 2e4)
        #expect(ms.spectralWindows.count == 1)
        #expect(ms.spectralWindows[0].frequencies.count == 8)
        #expect(abs(ms.spectralWindows[0].frequencies[0] - 1.35e9) < 1)
        #expect(abs(ms.spectralWindows[0].frequencies[7] - (1.35e9 + 7 * 12.5e6)) < 1)
        #expect(ms.polarizations == [Polarization(correlations: [.XX, .YY])])
        #expect(ms.fields.count == 1 && ms.fields[0].frame == "J2000")
        #expect(abs(ms.fields[0].ra - o.phaseCentre.ra) < 1e-12 && abs(ms.fields[0].dec - o.phaseCentre.dec) < 1e-12)
        #expect(ms.rowCount == 30 * 136)
        #expect(try ms.table.cellShape("DATA") == [2, 8])

        let chunks = try ms.rowChunks(targetRows: 500)
        #expect(chunks.reduce(0) { $0 + $1.count } == ms.rowCount)
        #expect(chunks.count > 1)

        // Independent evaluation per visibility: V = g_p · Σ S exp(+2πi uvw·(l,m,n−1) ν/c) · conj(g_q).
        let freqs = ms.spectralWindows[0].frequencies
        var maxErr = 0.0, maxAmp = 0.0
        for chunk in chunks {
            let v = try ms.read(chunk, dataColumn: "DATA", extra: [.uvw, .flags, .weights])
            #expect(v.flags.allSatisfy { $0 == 0 })
            for row in 0..<v.rowCount {
                let t = truth.times.firstIndex { abs($0 - v.time[row]) < 1e-3 }!
                let p = Int(v.antenna1[row]), q = Int(v.antenna2[row])
                for (c, nu) in freqs.enumerated() {
                    var mr = 0.0, mi = 0.0
                    for s in truth.sources {
                        let d = directionCosines(ra: s.ra, dec: s.dec, ra0: o.phaseCentre.ra, dec0: o.phaseCentre.dec)
                        let ph = 2 * Double.pi * nu / 299_792_458.0 * (v.uvw[3 * row] * d.l + v.uvw[3 * row + 1] * d.m + v.uvw[3 * row + 2] * (d.n - 1))
                        mr += s.flux(at: nu) * cos(ph)
                        mi += s.flux(at: nu) * sin(ph)
                    }
                    for pol in 0..<2 {
                        let gp = truth.gains[t][p][pol], gq = truth.gains[t][q][pol]
                        let ar = gp[0] * mr - gp[1] * mi, ai = gp[0] * mi + gp[1] * mr
                        let er = ar * gq[0] + ai * gq[1], ei = ai * gq[0] - ar * gq[1]
                        let k = 2 * (row * v.cellSize + c * 2 + pol)
                        maxErr = max(maxErr, abs(Double(v.data[k]) - er), abs(Double(v.data[k + 1]) - ei))
                        maxAmp = max(maxAmp, (er * er + ei * ei).squareRoot())
                    }
                }
            }
        }
        #expect(maxAmp > 4)
        #expect(maxErr < 2e-5 * maxAmp, "max |DATA − direct| = \(maxErr)")
    }

    /// python-casacore (an independent reader) sees the same table, and casacore's own derived
    /// J2000 UVW (TaQL mscal.uvwj2000) agrees with ours.
    @Test(.timeLimit(.minutes(2)))
    func pythonCasacoreReadsSimulatedMS() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let path = dir.appendingPathComponent("sim.ms").path
        var o = SimulationOptions(preset: .small)
        o.integrations = 4
        _ = try Simulator.run(msPath: path, options: o)
        let ms = try MeasurementSet(path: path)
        let chunk = try ms.rowChunks()[0]
        let v = try ms.read(chunk, dataColumn: "DATA")

        let script = """
        import json, numpy as np, casacore.tables as pt
        t = pt.table('\(path)', ack=False)
        d = t.getcell('DATA', 5)
        r = pt.taql('select UVW, mscal.uvwj2000() as U2 from $t')
        out = dict(nrows=t.nrows(), shape=list(t.getcell('DATA', 0).shape),
                   nant=pt.table('\(path)/ANTENNA', ack=False).nrows(),
                   freq=list(pt.table('\(path)/SPECTRAL_WINDOW', ack=False).getcell('CHAN_FREQ', 0)),
                   corr=list(map(int, pt.table('\(path)/POLARIZATION', ack=False).getcell('CORR_TYPE', 0))),
                   re=float(d[3, 1].real), im=float(d[3, 1].imag),
                   uvwdiff=float(np.abs(r.getcol('UVW') - r.getcol('U2')).max()),
                   uvwref=t.getcolkeyword('UVW', 'MEASINFO')['Ref'])
        print('JSON' + json.dumps(out))
        """
        let r = try TestSupport.python(script)
        #expect(r.status == 0, "\(r.output)")
        guard let line = r.output.split(separator: "\n").first(where: { $0.hasPrefix("JSON") }) else {
            Issue.record("no JSON from python: \(r.output)")
            return
        }
        let obj = try JSONSerialization.jsonObject(with: Data(line.dropFirst(4).utf8)) as! [String: Any]
        #expect(obj["nrows"] as? Int == ms.rowCount)
        #expect(obj["shape"] as? [Int] == [8, 2])  // python shows (nchan, npol)
        #expect(obj["nant"] as? Int == 16)
        #expect((obj["freq"] as? [Double])?.first.map { abs($0 - 1.35e9) < 1 } == true)
        #expect(obj["corr"] as? [Int] == [9, 12])
        #expect(obj["uvwref"] as? String == "J2000")
        // Row 5, channel 3, polarisation 1 (YY) — casacore order: pol fastest.
        let k = 2 * (5 * v.cellSize + 3 * 2 + 1)
        #expect(abs((obj["re"] as! Double) - Double(v.data[k])) < 1e-6)
        #expect(abs((obj["im"] as! Double) - Double(v.data[k + 1])) < 1e-6)
        #expect((obj["uvwdiff"] as! Double) < 1e-3, "UVW differs from casacore's J2000 UVW")
    }

    /// Multiple SPWs, 4 polarisations, B1950 phase centres: all written and read back.
    @Test(.timeLimit(.minutes(2)))
    func multiSPWFourPolB1950() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let path = dir.appendingPathComponent("dsa.ms").path
        var o = SimulationOptions(preset: .dsa110)
        o.integrations = 1
        o.channels = 4
        o.frame = "B1950"
        o.correlations = [.XX, .XY, .YX, .YY]
        _ = try Simulator.run(msPath: path, options: o)
        let ms = try MeasurementSet(path: path)
        #expect(ms.antennas.count == 96)
        #expect(ms.spectralWindows.count == 16)
        #expect(ms.dataDescriptions.count == 16)
        #expect(abs(ms.spectralWindows[0].frequencies[0] - (1311e6 + 188e6 / 768 / 2)) < 1)
        #expect(ms.spectralWindows[15].frequencies.last! < 1499e6)
        #expect(ms.polarizations[0].correlations == [.XX, .XY, .YX, .YY])
        #expect(ms.fields[0].frame == "B1950")
        // The B1950 position differs from J2000 by about 0.6° at this position.
        let j = try Measures.convert(ra: ms.fields[0].ra, dec: ms.fields[0].dec, from: "B1950", to: "J2000", epoch: 60676.3 * 86400)
        #expect(abs(remainder(j.ra - o.phaseCentre.ra, 2 * .pi)) < 1e-6 && abs(j.dec - o.phaseCentre.dec) < 1e-6)
        #expect(abs(remainder(ms.fields[0].ra - o.phaseCentre.ra, 2 * .pi)) > 1e-3)
        let chunks = try ms.rowChunks()
        #expect(Set(chunks.map(\.dataDescription)) == Set(0..<16))
        let v = try ms.read(chunks[3], dataColumn: "DATA")
        #expect(v.cellSize == 16)
    }

    @Test(.timeLimit(.minutes(1)))
    func realVLAMeasurementSetOpens() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let path = try TestSupport.vlaMS(in: dir)
        let ms = try MeasurementSet(path: path)
        #expect(ms.antennas.count == 28)
        #expect(ms.antennas[14].name == "15")
        #expect(ms.polarizations[0].correlations == [.RR, .LL])
        #expect(ms.spectralWindows.count == 1)
        #expect(abs(ms.spectralWindows[0].frequencies[0] - 1.41342191e9) < 1e3)
        #expect(ms.fields[0].frame == "J2000")
        #expect(abs(ms.fields[0].ra - -2.42044692) < 1e-7)
        #expect(abs(ms.fields[0].dec - 0.17412604) < 1e-7)
        #expect(ms.fields[0].name == "1445+09900002_0")
        #expect(ms.rowCount == 5292)
        let autos = try ms.rowChunks().reduce(0) { n, c in
            let v = try ms.read(c, dataColumn: nil)
            return n + zip(v.antenna1, v.antenna2).filter { $0 == $1 }.count
        }
        #expect(autos == 378)
    }

    @Test(.timeLimit(.minutes(1)))
    func dataColumnsAreCreatedLikeCASA() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let path = try TestSupport.vlaMS(in: dir)
        do {
            let ms = try MeasurementSet(path: path, mode: .readWrite)
            #expect(!ms.hasColumn("MODEL_DATA"))
            try ms.ensureDataColumn("MODEL_DATA")
            try ms.ensureDataColumn("CORRECTED_DATA")
            let c = try ms.rowChunks()[0]
            let d = try ms.read(c, dataColumn: "DATA")
            let corr = try ms.read(c, dataColumn: "CORRECTED_DATA")
            let model = try ms.read(c, dataColumn: "MODEL_DATA")
            #expect(corr.data == d.data)
            #expect(model.data.allSatisfy { $0 == 0 })
            var m = model.data
            for i in stride(from: 0, to: m.count, by: 2) { m[i] = 1 }
            try ms.writeData("MODEL_DATA", chunk: c, cellSize: model.cellSize, from: m)
        }
        let ms = try MeasurementSet(path: path)
        let c = try ms.rowChunks()[0]
        #expect(try ms.read(c, dataColumn: "MODEL_DATA").data[0] == 1)
    }

    // MARK: Bad input

    @Test func missingPathIsBadInput() throws {
        let e = #expect(throws: PipelineError.self) { try MeasurementSet(path: "/nonexistent/x.ms") }
        #expect(e?.code == .badInput)
        #expect(e?.description.contains("/nonexistent/x.ms") == true)
    }

    @Test func pathThatIsNotATableIsBadInput() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let file = dir.appendingPathComponent("notatable.ms")
        try FileManager.default.createDirectory(at: file, withIntermediateDirectories: true)
        try "hello".write(to: file.appendingPathComponent("junk"), atomically: true, encoding: .utf8)
        let e = #expect(throws: PipelineError.self) { try MeasurementSet(path: file.path) }
        #expect(e?.code == .badInput)
        #expect(e?.message.contains("not a casacore table") == true)
    }

    @Test func missingColumnNamesTheColumn() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let path = try TestSupport.vlaMS(in: dir)
        let ms = try MeasurementSet(path: path)
        let c = try ms.rowChunks()[0]
        let e = #expect(throws: PipelineError.self) { try ms.read(c, dataColumn: "MODEL_DATA") }
        #expect(e?.code == .badInput)
        #expect(e?.description.contains("MODEL_DATA") == true)
    }

    @Test func readOnlyMSOpenedForWritingIsRefusedAndUntouched() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let path = try TestSupport.vlaMS(in: dir)
        try TestSupport.run("/bin/chmod", ["-R", "a-w", path])
        let before = try TestSupport.run("/bin/sh", ["-c", "cd '\(path)' && ls -lR --time-style=full-iso | md5sum"]).output
        let e = #expect(throws: PipelineError.self) { try MeasurementSet(path: path, mode: .readWrite) }
        #expect(e?.code == .badInput)
        #expect(e?.message.contains("read-only") == true)
        // Opened read-only, writes are refused too.
        let ms = try MeasurementSet(path: path)
        let e2 = #expect(throws: PipelineError.self) { try ms.ensureDataColumn("MODEL_DATA") }
        #expect(e2?.code == .badInput)
        let after = try TestSupport.run("/bin/sh", ["-c", "cd '\(path)' && ls -lR --time-style=full-iso | md5sum"]).output
        #expect(before == after)
    }
}
