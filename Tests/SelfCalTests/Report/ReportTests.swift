import Foundation
@testable import Imaging
import Testing

@testable import SelfCal
import SelfCalSupport

/// report.html and batch-report.html: PNG encoding, previews whose overlays sit on the right
/// pixels, and pages that load in a real browser (Debian's headless Chromium) for finished,
/// interrupted and failed runs.
@Suite("HTML report", .serialized)
struct ReportTests {
    // MARK: Units

    @Test func pngRoundTripsAndRejectsCorruption() throws {
        var rng = SystemRandomNumberGenerator()
        for channels in [1, 3, 4] {
            let (w, h) = (37, 23)
            // Gradients (which the Sub/Up/Paeth filters like) plus noise (which they don't).
            let pixels = (0..<(w * h * channels)).map { i -> UInt8 in
                let x = (i / channels) % w, y = (i / channels) / w
                return i % 5 == 0 ? UInt8.random(in: 0...255, using: &rng) : UInt8(truncatingIfNeeded: 3 * x + 7 * y + i % channels)
            }
            let image = RasterImage(width: w, height: h, channels: channels, pixels: pixels)
            let png = try PNG.encode(image)
            #expect(Array(png.prefix(8)) == PNG.signature)
            #expect(try PNG.decode(png) == image, "\(channels) channels")
            var bad = png
            bad[bad.count / 2] ^= 0x55
            #expect(throws: PipelineError.self) { _ = try PNG.decode(bad) }
        }
        #expect(throws: PipelineError.self) { _ = try PNG.decode(Data("not a png".utf8)) }
    }

    @Test func stretchesInvertAndColourMapsAreMonotonic() {
        let values = (0..<10_000).map { Float(sin(Double($0)) * 0.01) } + [5]
        let s = Stretch.forImage(values)
        for t in stride(from: 0.0, through: 1, by: 0.125) {
            #expect(abs(s.forward(s.inverse(t)) - t) < 1e-9)
        }
        #expect(s.forward(5) == 1 && s.range.hi == 5)
        let r = Stretch.forResidual(values)
        #expect(r.range.lo == -r.range.hi && r.forward(0) == 0.5)
        // Brightness (R+G+B) rises along inferno, so "brightest pixel" means "highest value".
        var last = -1
        for i in 0...100 {
            let (a, b, c) = Colormap.inferno.rgb(Double(i) / 100)
            let sum = Int(a) + Int(b) + Int(c)
            #expect(sum >= last, "inferno at \(i)%")
            last = sum
        }
    }

    /// A synthetic sky: Gaussian sources placed through the WCS, a square mask. The markers land
    /// on the brightest PNG pixels (north up: FITS row 0 is the PNG's bottom row), also when the
    /// preview is block-averaged, and the mask outline traces the square's edges.
    @Test func previewMarksCatalogSourcesOnTheirPixelsAndOutlinesTheMask() throws {
        let raDeg = 202.7845, decDeg = 30.5092
        var image = FITSImage.sky(width: 256, height: 200, cellArcsec: 10, raDeg: raDeg, decDeg: decDeg, frequencyHz: 1.4e9)
        let wcs = try image.wcs()
        let sources = [(raDeg + 0.1, decDeg + 0.05, 3.0), (raDeg - 0.12, decDeg - 0.1, 1.0), (raDeg + 0.02, decDeg + 0.2, 0.5)]
            .enumerated().map { SkyComponent(name: "T\($0)", ra: $1.0 * .pi / 180, dec: $1.1 * .pi / 180, flux: $1.2) }
        let outside = SkyComponent(name: "far", ra: (raDeg + 3) * .pi / 180, dec: decDeg * .pi / 180, flux: 9)
        for s in sources {
            let p = try wcs.worldToPixel(raDeg: s.ra * 180 / .pi, decDeg: s.dec * 180 / .pi)
            for y in 0..<image.height {
                for x in 0..<image.width {
                    let d2 = pow(Double(x) - p.x, 2) + pow(Double(y) - p.y, 2)
                    image[x: x, y: y] += Float(s.flux * exp(-d2 / 4))
                }
            }
        }
        for i in stride(from: 0, to: image.pixels.count, by: 7) { image.pixels[i] += Float(i % 13) * 1e-3 }
        image[x: 0, y: 0] = .nan
        var mask = FITSImage(width: 256, height: 200, header: image.header)
        for y in 40..<60 { for x in 100..<130 { mask[x: x, y: y] = 1 } }

        for maxSize in [512, 128] {
            var preview = try ImagePreview.render(image, stretch: .forImage(image.pixels), colormap: .inferno, maxSize: maxSize)
            try preview.place(sources + [outside], wcs: wcs)
            preview.outline(mask: mask)
            let f = maxSize == 512 ? 1 : 2
            #expect(preview.factor == f && preview.width == 256 / f && preview.height == 200 / f)
            let png = try PNG.decode(preview.png)
            #expect(png.width == preview.width && png.height == preview.height && png.channels == 3)
            #expect(preview.sources.map(\.name) == ["T0", "T1", "T2"], "the source outside the field is dropped")
            for src in preview.sources {
                let (cx, cy) = preview.pngPoint(x: src.x, y: src.y)
                let peak = brightest(png, near: (cx, cy), radius: 6)
                #expect(abs(Double(peak.x) + 0.5 - cx) <= 1 && abs(Double(peak.y) + 0.5 - cy) <= 1,
                        "\(src.name): marker at (\(cx), \(cy)), brightest pixel at \(peak) (factor \(f))")
            }
            let top = brightest(png, near: (Double(png.width) / 2, Double(png.height) / 2), radius: 10_000)
            let first = preview.pngPoint(x: preview.sources[0].x, y: preview.sources[0].y)
            #expect(abs(Double(top.x) + 0.5 - first.x) <= 1 && abs(Double(top.y) + 0.5 - first.y) <= 1, "the brightest pixel is the brightest source's")
            #expect(Array(png[0, png.height - 1]) == [96, 96, 96] || f > 1, "a NaN pixel is grey, bottom-left")
            // The outline's extent is the square's: x 100…130, y 40…60 in FITS corners.
            let numbers = try #require(preview.maskOutline).split(whereSeparator: { "ML ".contains($0) }).compactMap { Double($0) }
            let xs = stride(from: 0, to: numbers.count, by: 2).map { numbers[$0] }
            let ys = stride(from: 1, to: numbers.count, by: 2).map { numbers[$0] }
            #expect(xs.min() == 100 / Double(f) && xs.max() == 130 / Double(f))
            #expect(ys.min() == (200 - 60) / Double(f) && ys.max() == (200 - 40) / Double(f))
        }
    }

    // MARK: Real runs in a real browser

    /// A simulated run (antenna index 5 flagged) rendered in headless Chromium: the page loads
    /// without errors, every image decodes at its size, the rounds and gain plots are there (the
    /// flagged antenna's solutions marked), and the catalog markers sit on the brightest pixels of
    /// the final image where the image's WCS puts the simulated sources.
    @Test(.timeLimit(.minutes(5)))
    func simulatedRunReportRendersInChromium() async throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let (config, ms) = try simulateAndConfigure(dir, flagAntenna: 5)
        let r = try TestSupport.selfcal(["run", config], timeout: 240)
        #expect(r.status == 0, "\(r.output.suffix(3000))")
        let out = dir.appendingPathComponent("out")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("report.html").path), "run writes report.html")
        #expect(r.output.contains("html report: "))
        // Again with the simulated catalog to overlay (this build's seeding records no catalog),
        // and a clean mask (circles of 6 pixels around the sources) recorded as the seeding's.
        let catalog = ms + ".catalog.fits"
        var recorded = try RunReport.load(from: out.path)
        let maskPath = out.appendingPathComponent("mask.fits").path
        try writeMask(like: out.appendingPathComponent("initial/image-image.fits").path, around: try SimulationTruth.load(ms + ".truth.json").sources,
                      radius: 6, to: maskPath)
        recorded.seeding?.mask = maskPath
        try recorded.write(to: out.path)
        let t0 = Date()
        let rep = try TestSupport.selfcal(["report", out.path, "--catalog", catalog], timeout: 60)
        let reportSeconds = Date().timeIntervalSince(t0)
        #expect(rep.status == 0, "\(rep.output)")
        let htmlURL = out.appendingPathComponent("report.html")
        let html = try String(contentsOf: htmlURL, encoding: .utf8)
        let report = try RunReport.load(from: out.path)
        #expect(reportSeconds < 30, "selfcal report took \(reportSeconds) s")

        // Self-contained: nothing loaded from elsewhere.
        #expect(!html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("<link"))
        #expect(html.contains("data-status=\"\(report.status.rawValue)\""))
        #expect(count(html, "<tr class=\"round ") == report.rounds.count)

        // Previews: each decodes to the image's size and is not flat.
        for id in ["initial-image", "final-image", "initial-residual", "final-residual"] {
            let png = try PNG.decode(try imageData(html, id: "img-\(id)"))
            #expect(png.width == 384 && png.height == 384, "\(id): \(png.width)×\(png.height)")
            #expect(distinctColours(png) > 50, "\(id) is flat")
        }

        // Markers: where the final image's WCS puts the truth's sources, and on its brightest pixels.
        let acceptedRounds = report.rounds.filter(\.accepted)
        let finalRound = try #require(acceptedRounds.last)
        let fits = try FITSImage.read(path: out.appendingPathComponent(String(format: "round-%02d/image-image.fits", finalRound.index)).path)
        let wcs = try fits.wcs()
        let truth = try SimulationTruth.load(ms + ".truth.json")
        let figure = try section(html, from: "<figure id=\"fig-final-image\"", to: "</figure>")
        let markers = circles(figure)
        #expect(markers.count == truth.sources.count, "\(markers.count) markers for \(truth.sources.count) sources")
        let png = try PNG.decode(try imageData(html, id: "img-final-image"))
        // "On the source" means within the restoring beam's minor axis (the beam is long and thin
        // here: 16 antennas, one snapshot), at least 2 pixels.
        let cellDeg = abs(try #require(fits.doubleValue(forKey: "CDELT2")))
        let tolerance = max(2, try #require(fits.doubleValue(forKey: "BMIN")) / cellDeg)
        for s in truth.sources {
            let p = try wcs.worldToPixel(raDeg: s.ra * 180 / .pi, decDeg: s.dec * 180 / .pi)
            guard let m = markers.min(by: { hypot($0.x - p.x, $0.y - p.y) < hypot($1.x - p.x, $1.y - p.y) }) else { continue }
            #expect(hypot(m.x - p.x, m.y - p.y) < 0.01, "\(s.name): marker at (\(m.x), \(m.y)), WCS says (\(p.x), \(p.y))")
            #expect(abs(m.cx - (p.x + 0.5)) < 0.01 && abs(m.cy - (384 - p.y - 0.5)) < 0.01, "\(s.name): drawn at (\(m.cx), \(m.cy))")
            // The rendered peak near the marker is the FITS image's own peak there (north up) …
            let peak = brightest(png, near: (m.cx, m.cy), radius: 4)
            let fitsPeak = brightestFITS(fits, near: (p.x, p.y), radius: 4)
            #expect(abs(peak.x - fitsPeak.x) <= 1 && abs(peak.y - (383 - fitsPeak.y)) <= 1,
                    "\(s.name): PNG peak \(peak), FITS peak \(fitsPeak) (flipped y \(383 - fitsPeak.y))")
            // … and lies on the source.
            #expect(hypot(Double(peak.x) + 0.5 - m.cx, Double(peak.y) + 0.5 - m.cy) <= tolerance,
                    "\(s.name) (\(s.flux) Jy): marker at (\(m.cx), \(m.cy)), local peak at \(peak), tolerance \(tolerance) px")
        }
        // The four brightest separate peaks of the whole rendered image are the four sources.
        for peak in peaks(png, count: truth.sources.count, separation: 8) {
            let near = markers.contains { hypot($0.cx - (Double(peak.x) + 0.5), $0.cy - (Double(peak.y) + 0.5)) <= tolerance }
            #expect(near, "bright peak at \(peak) has no catalog marker within \(tolerance) px")
        }

        // The mask outline is drawn, around every marker.
        let outline = try section(figure, from: "<path class=\"mask-outline\" d=\"", to: "\"")
        let numbers = outline.dropFirst(30).split(whereSeparator: { "ML \"".contains($0) }).compactMap { Double($0) }
        #expect(numbers.count > 16)
        for m in markers {
            let near = stride(from: 0, to: numbers.count - 1, by: 2).contains { abs(numbers[$0] - m.cx) <= 7 && abs(numbers[$0 + 1] - m.cy) <= 7 }
            #expect(near, "no mask edge near the marker at (\(m.cx), \(m.cy))")
        }

        // Gain plots: a phase plot per accepted round, one panel per antenna, flags where the table has them.
        let accepted = report.rounds.filter(\.accepted)
        #expect(count(html, "<svg class=\"gain-plot\" data-quantity=\"phase\"") == accepted.count)
        #expect(count(html, "<svg class=\"gain-plot\" data-quantity=\"amplitude\"") == accepted.filter { $0.calmode == "ap" }.count)
        let lastTable = try GainTable.read(path: try #require(accepted.last).caltable)
        let gains = try section(html, from: "<div class=\"gaintable\" data-table=\"\(try #require(accepted.last).caltable)\"", to: "</div>")
        for ant in Set(lastTable.solutions.map(\.antenna)) {
            let sols = lastTable.solutions.filter { $0.antenna == ant }
            let flagged = sols.reduce(0) { $0 + $1.flags.filter { $0 }.count }
            #expect(gains.contains("data-antenna=\"\(ant)\" data-name=\"\(ant + 1)\" data-solutions=\"\(2 * sols.count)\" data-flagged=\"\(flagged)\""), "antenna \(ant)")
            if ant == 5 { #expect(flagged == 2 * sols.count, "antenna 5 is flagged in the data") }
        }
        #expect(gains.contains("class=\"gain-flagged\""))

        // The browser: loads, runs the check, decodes every image; a screenshot kept as an artifact.
        guard let browser = try Browser() else { return }
        let check = try browser.check(htmlURL, profile: dir.appendingPathComponent("chromium"))
        #expect(check.state == "ok", "page check: \(check.raw)")
        #expect(check.errors.isEmpty, "script errors: \(check.errors)")
        #expect(check.images.count == 4 && check.images.allSatisfy { $0.w == 384 && $0.h == 384 && $0.colours > 50 }, "\(check.images)")
        #expect(check.gainPlots == accepted.count + accepted.filter { $0.calmode == "ap" }.count)
        let shot = out.appendingPathComponent("report-screenshot.png")
        try browser.screenshot(htmlURL, to: shot, width: 1400, height: 5000, profile: dir.appendingPathComponent("chromium"))
        try keepArtifact(shot, as: "report-screenshot.png")
        try keepArtifact(htmlURL, as: "report.html")
    }

    /// SIGINT during round 1: the run's report.html says "interrupted", shows the initial image,
    /// says why there is no final one, and loads cleanly.
    @Test(.timeLimit(.minutes(3)))
    func interruptedRunReportSaysSo() async throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let (config, _) = try simulateAndConfigure(dir)
        let log = dir.appendingPathComponent("run.out")
        let child = try spawnSelfcal(["run", config], output: log)
        try await pollUntil("the run gets there", within: .seconds(120)) { (try? String(contentsOf: log, encoding: .utf8))?.contains("round 1/3 (p, inf): imaging") == true }
        try await Task.sleep(for: .milliseconds(300))
        kill(child.processIdentifier, SIGINT)
        child.waitUntilExit()
        #expect(child.terminationStatus == 130)
        let out = dir.appendingPathComponent("out")
        let htmlURL = out.appendingPathComponent("report.html")
        let html = try String(contentsOf: htmlURL, encoding: .utf8)
        #expect(html.contains("data-status=\"interrupted\""))
        #expect(html.contains("The run was interrupted after 0 completed rounds"))
        #expect(html.contains("interrupted by a signal"))
        #expect(try PNG.decode(try imageData(html, id: "img-initial-image")).width == 384)
        #expect(!html.contains("id=\"img-final-image\""))
        #expect(html.contains("No round was accepted, so the final image is the initial one."))
        #expect(html.contains("No table was accepted"))
        guard let browser = try Browser() else { return }
        let check = try browser.check(htmlURL, profile: dir.appendingPathComponent("chromium"))
        #expect(check.state == "ok" && check.images.count == 2, "page check: \(check.raw)")
        let shot = out.appendingPathComponent("report-screenshot.png")
        try browser.screenshot(htmlURL, to: shot, width: 1400, height: 1600, profile: dir.appendingPathComponent("chromium"))
        try keepArtifact(shot, as: "interrupted-report-screenshot.png")
    }

    /// A run that fails validation (too much flagged data): with --no-report nothing is written;
    /// without it report.html says "failed", quotes the error and shows no images.
    @Test(.timeLimit(.minutes(2)))
    func failedRunReportSaysWhatHappened() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let (config, _) = try simulateAndConfigure(dir, flagAntenna: 0, extra: ["max_flagged_fraction": 0.01])
        let out = dir.appendingPathComponent("out")
        let htmlURL = out.appendingPathComponent("report.html")
        let quiet = try TestSupport.selfcal(["run", config, "--no-report"], timeout: 60)
        #expect(quiet.status == 3, "\(quiet.output)")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("report.json").path))
        #expect(!FileManager.default.fileExists(atPath: htmlURL.path), "--no-report wrote report.html")
        let r = try TestSupport.selfcal(["run", config], timeout: 60)
        #expect(r.status == 3, "\(r.output)")
        let html = try String(contentsOf: htmlURL, encoding: .utf8)
        #expect(html.contains("data-status=\"failed\""))
        #expect(html.contains("id=\"run-error\"") && html.contains("max_flagged_fraction"))
        #expect(html.contains("No image was made"))
        #expect(html.contains("Not made: the run stopped before this image"))
        #expect(!html.contains("<img"))
        guard let browser = try Browser() else { return }
        let check = try browser.check(htmlURL, profile: dir.appendingPathComponent("chromium"))
        #expect(check.state == "ok" && check.images.isEmpty, "page check: \(check.raw)")
    }

    /// batch-report.html from a batch-summary.json: a row per MS with status, SNR before/after,
    /// a thumbnail of the final image and a link to the run's report.html (written if missing).
    @Test(.timeLimit(.minutes(2)))
    func batchReportLinksEveryRun() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        var entries: [BatchSummaryEntry] = []
        for (i, status) in [RunStatus.converged, .diverged].enumerated() {
            let out = dir.appendingPathComponent("runs/ms\(i).selfcal")
            try writeSyntheticRun(out, status: status, acceptedRounds: i == 0 ? 2 : 0)
            entries.append(BatchSummaryEntry(ms: "/data/ms\(i).ms", status: status.rawValue, outputDir: out.path, initialSnr: 12.5,
                                             finalSnr: i == 0 ? 250.0 : 12.5, rounds: i == 0 ? 2 : 1, wallS: 61.2, attempts: 1, error: nil))
        }
        entries.append(BatchSummaryEntry(ms: "/data/ms2.ms", status: "failed", outputDir: dir.appendingPathComponent("runs/ms2.selfcal").path,
                                         initialSnr: nil, finalSnr: nil, rounds: 0, wallS: 0.4, attempts: 2,
                                         error: "no such Measurement Set: /data/ms2.ms"))
        try BatchSummary(entries: entries, succeeded: 2, failed: 1, pending: 0, allSucceeded: false).write(to: dir.path)
        let r = try TestSupport.selfcal(["report", dir.path], timeout: 60)
        #expect(r.status == 0, "\(r.output)")
        let htmlURL = dir.appendingPathComponent("batch-report.html")
        let html = try String(contentsOf: htmlURL, encoding: .utf8)
        #expect(count(html, "<tr class=\"batch-row\"") == 3)
        for i in 0..<2 {
            #expect(html.contains("href=\"runs/ms\(i).selfcal/report.html\""))
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("runs/ms\(i).selfcal/report.html").path))
            let thumb = try PNG.decode(try imageData(html, id: "thumb-\(i)"))
            #expect(thumb.width == 128 && thumb.height == 128)
        }
        #expect(html.contains("no such Measurement Set: /data/ms2.ms"))
        #expect(html.contains("×20.00"))
        #expect(try BatchReportRow.load(batchDir: dir.path).count == 3)
        guard let browser = try Browser() else { return }
        let check = try browser.check(htmlURL, profile: dir.appendingPathComponent("chromium"))
        #expect(check.state == "ok" && check.images.count == 2, "page check: \(check.raw)")
        let shot = dir.appendingPathComponent("batch-screenshot.png")
        try browser.screenshot(htmlURL, to: shot, width: 1200, height: 700, profile: dir.appendingPathComponent("chromium"))
        try keepArtifact(shot, as: "batch-report-screenshot.png")
    }

    // MARK: Helpers

    /// A small simulated MS (optionally with one antenna's data flagged) and LoopTests' config.
    func simulateAndConfigure(_ dir: URL, flagAntenna: Int? = nil, extra: [String: Any] = [:]) throws -> (config: String, ms: String) {
        let ms = dir.appendingPathComponent("s.ms").path
        var args = ["simulate", "--out", ms, "--seed", "3", "--noise-jy", "0.05"]
        if let flagAntenna { args += ["--flag-antenna", String(flagAntenna)] }
        let r = try TestSupport.selfcal(args)
        #expect(r.status == 0, "\(r.output)")
        var cfg: [String: Any] = ["ms": ms, "output_dir": dir.appendingPathComponent("out").path,
                                  "phase_solints": ["inf", "60s"], "do_amplitude": true, "amp_solint": "inf",
                                  "calib_flux_jy": 4, "refant": "1", "imaging": LoopTests.smallImaging]
        for (k, v) in extra { cfg[k] = v }
        let path = dir.appendingPathComponent("config.json").path
        try JSONSerialization.data(withJSONObject: cfg, options: [.prettyPrinted]).write(to: URL(fileURLWithPath: path))
        return (path, ms)
    }

    /// An output directory as a run leaves it, without running: report.json and 256² images.
    func writeSyntheticRun(_ out: URL, status: RunStatus, acceptedRounds: Int) throws {
        var rounds: [RoundReport] = []
        for i in 1...max(1, acceptedRounds) {
            rounds.append(RoundReport(index: i, calmode: "p", solint: "inf", accepted: i <= acceptedRounds, peakJy: 2, rmsJy: 0.01, snr: 200,
                                      cleanComponents: 10, caltable: out.appendingPathComponent(String(format: "round-%02d/phase.G", i)).path,
                                      wallS: 10, flaggedSolutions: 0, timings: [:], note: nil))
        }
        for prefix in ["initial"] + rounds.filter(\.accepted).map({ String(format: "round-%02d", $0.index) }) {
            let d = out.appendingPathComponent(prefix)
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            var image = FITSImage.sky(width: 256, height: 256, cellArcsec: 10, raDeg: 202.78, decDeg: 30.5, frequencyHz: 1.4e9)
            for y in 0..<256 { for x in 0..<256 { image[x: x, y: y] = Float(exp(-(pow(Double(x - 128), 2) + pow(Double(y - 140), 2)) / 8)) + Float((x * 7 + y * 13) % 17) * 1e-3 } }
            try image.write(path: d.appendingPathComponent("image-image.fits").path)
            try image.write(path: d.appendingPathComponent("image-residual.fits").path)
        }
        let metrics = ImageMetrics(peakJy: 1, rmsJy: 0.01, cleanComponents: 3)
        let report = RunReport(status: status, stopReason: "synthetic", ms: "/data/x.ms", outputDir: out.path, startedAt: "2025-01-01T00:00:00Z",
                               wallS: 61.2, seeding: .calibratorOnly(), executor: "native wsclean",
                               initial: metrics, final: metrics, rounds: rounds, finalCaltable: nil, acceptedCaltables: [],
                               timings: ["image": 50], warnings: [], error: nil, exitCode: 0)
        try report.write(to: out.path)
    }

    /// A mask on `image`'s grid: 1 within `radius` pixels of each source, 0 elsewhere.
    func writeMask(like image: String, around sources: [SkyComponent], radius: Double, to path: String) throws {
        var mask = try FITSImage.read(path: image)
        let wcs = try mask.wcs()
        let centres = try wcs.worldToPixel(sources.map { (raDeg: $0.ra * 180 / .pi, decDeg: $0.dec * 180 / .pi) })
        for y in 0..<mask.height {
            for x in 0..<mask.width {
                mask[x: x, y: y] = centres.contains { hypot(Double(x) - $0.x, Double(y) - $0.y) <= radius } ? 1 : 0
            }
        }
        try mask.write(path: path)
    }

    /// Copies a file into Tests/artifacts/ (git-ignored) so a person can look at it after the run.
    func keepArtifact(_ file: URL, as name: String) throws {
        let dir = TestSupport.packageRoot.appendingPathComponent("Tests/artifacts")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let dest = dir.appendingPathComponent(name)
        try? FileManager.default.removeItem(at: dest)
        try FileManager.default.copyItem(at: file, to: dest)
    }
}

// MARK: Reading the page back

func count(_ s: String, _ needle: String) -> Int { s.components(separatedBy: needle).count - 1 }

/// The text from the first `from` up to and including the next `to`.
func section(_ html: String, from: String, to: String) throws -> String {
    let start = try #require(html.range(of: from), "no \(from)")
    let end = try #require(html.range(of: to, range: start.upperBound..<html.endIndex), "no \(to) after \(from)")
    return String(html[start.lowerBound..<end.upperBound])
}

/// The PNG bytes of `<img id="ID" … src="data:image/png;base64,…">`.
func imageData(_ html: String, id: String) throws -> Data {
    let tag = try section(html, from: "<img id=\"\(id)\"", to: ">")
    let start = try #require(tag.range(of: "src=\"data:image/png;base64,"), "\(id) has no PNG data URI")
    let end = try #require(tag.range(of: "\"", range: start.upperBound..<tag.endIndex))
    return try #require(Data(base64Encoded: String(tag[start.upperBound..<end.lowerBound])), "\(id): bad base64")
}

struct Marker {
    var cx: Double, cy: Double, x: Double, y: Double
}

/// The catalog markers in a piece of the page.
func circles(_ html: String) -> [Marker] {
    html.components(separatedBy: "<circle class=\"catalog-source\"").dropFirst().compactMap { tag in
        func attribute(_ name: String) -> Double? {
            guard let r = tag.range(of: " \(name)=\""), let e = tag.range(of: "\"", range: r.upperBound..<tag.endIndex) else { return nil }
            return Double(tag[r.upperBound..<e.lowerBound])
        }
        guard let cx = attribute("cx"), let cy = attribute("cy"), let x = attribute("data-x"), let y = attribute("data-y") else { return nil }
        return Marker(cx: cx, cy: cy, x: x, y: y)
    }
}

func distinctColours(_ png: RasterImage) -> Int {
    var seen = Set<Int>()
    for i in stride(from: 0, to: png.pixels.count, by: png.channels) {
        seen.insert(Int(png.pixels[i]) << 16 | Int(png.pixels[i + min(1, png.channels - 1)]) << 8 | Int(png.pixels[i + min(2, png.channels - 1)]))
    }
    return seen.count
}

func brightness(_ png: RasterImage, _ x: Int, _ y: Int) -> Int {
    png[x, y].prefix(3).reduce(0) { $0 + Int($1) }
}

/// The brightest pixel (R+G+B) within `radius` of a PNG point.
func brightest(_ png: RasterImage, near p: (Double, Double), radius: Int) -> (x: Int, y: Int) {
    var best = (x: 0, y: 0, v: -1)
    let x0 = Int(p.0), y0 = Int(p.1)
    for y in max(0, y0 - radius)...min(png.height - 1, y0 + radius) {
        for x in max(0, x0 - radius)...min(png.width - 1, x0 + radius) {
            let v = brightness(png, x, y)
            if v > best.v { best = (x, y, v) }
        }
    }
    return (best.x, best.y)
}

/// The highest FITS pixel within `radius` of (x, y).
func brightestFITS(_ image: FITSImage, near p: (Double, Double), radius: Int) -> (x: Int, y: Int) {
    var best = (x: 0, y: 0, v: -Float.infinity)
    let x0 = Int(p.0.rounded()), y0 = Int(p.1.rounded())
    for y in max(0, y0 - radius)...min(image.height - 1, y0 + radius) {
        for x in max(0, x0 - radius)...min(image.width - 1, x0 + radius) where image[x: x, y: y] > best.v {
            best = (x, y, image[x: x, y: y])
        }
    }
    return (best.x, best.y)
}

/// The `count` brightest local maxima (each the brightest in its 5×5 neighbourhood), at least
/// `separation` pixels apart (plateaus count once).
func peaks(_ png: RasterImage, count: Int, separation: Int) -> [(x: Int, y: Int)] {
    var maxima: [(x: Int, y: Int, v: Int)] = []
    for y in 0..<png.height {
        for x in 0..<png.width {
            let v = brightness(png, x, y)
            var isMax = true
            for dy in -2...2 where isMax {
                for dx in -2...2 where (dx, dy) != (0, 0) {
                    let xx = x + dx, yy = y + dy
                    if xx >= 0, yy >= 0, xx < png.width, yy < png.height, brightness(png, xx, yy) > v { isMax = false; break }
                }
            }
            if isMax { maxima.append((x, y, v)) }
        }
    }
    maxima.sort { $0.v > $1.v }
    var out: [(x: Int, y: Int)] = []
    for p in maxima where out.count < count {
        if out.allSatisfy({ abs($0.x - p.x) > separation || abs($0.y - p.y) > separation }) { out.append((p.x, p.y)) }
    }
    return out
}

/// Debian's headless Chromium, driven the way a person would open the page.
struct Browser {
    let path: String

    /// The browser, or nil after saying why there is none. Its absence is a test failure unless
    /// SELFCAL_SKIP_BROWSER=1 is set outside CI: on CI (CI set) it always fails.
    init?() throws {
        if let p = TestSupport.which("chromium") ?? TestSupport.which("chromium-browser") {
            path = p
            return
        }
        let env = ProcessInfo.processInfo.environment
        let why = "headless Chromium is not installed, so report.html cannot be checked in a browser: "
            + "install Debian's chromium (SELFCAL_WITH_BROWSER=1 scripts/install-deps.sh)"
        if env["SELFCAL_SKIP_BROWSER"] == "1" && env["CI"] == nil {
            print("ReportTests: skipping the browser checks (SELFCAL_SKIP_BROWSER=1): \(why)")
        } else {
            Issue.record(Comment(rawValue: why))
        }
        return nil
    }

    func arguments(_ profile: URL) -> [String] {
        ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--disable-extensions",
         "--user-data-dir=\(profile.path)", "--virtual-time-budget=10000"]
    }

    struct Check {
        struct Image: Decodable, CustomStringConvertible {
            var id: String, w: Int, h: Int, ok: Bool, colours: Int
            var description: String { "\(id) \(w)×\(h) ok=\(ok) colours=\(colours)" }
        }
        var state: String
        var images: [Image]
        var errors: [String]
        var gainPlots: Int
        var raw: String
    }

    /// Loads the page (`--dump-dom`) and reads the check element the page's script filled in.
    func check(_ page: URL, profile: URL) throws -> Check {
        let r = try TestSupport.run(path, arguments(profile) + ["--dump-dom", page.absoluteString], timeout: 90)
        let id = HTMLReport.checkElementID
        guard r.status == 0, let tag = r.output.range(of: "<div id=\"\(id)\" data-state=\"") else {
            return Check(state: "no page (exit \(r.status))", images: [], errors: [], gainPlots: 0, raw: String(r.output.suffix(2000)))
        }
        let rest = r.output[tag.upperBound...]
        let state = String(rest.prefix { $0 != "\"" })
        guard let open = rest.range(of: ">"), let close = rest.range(of: "</div>") else {
            return Check(state: state, images: [], errors: [], gainPlots: 0, raw: String(rest.prefix(2000)))
        }
        let text = String(rest[open.upperBound..<close.lowerBound])
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
        struct Payload: Decodable { var images: [Check.Image]; var errors: [String]; var gainPlots: Int }
        guard let p = try? JSONDecoder().decode(Payload.self, from: Data(text.utf8)) else {
            return Check(state: state + " (unreadable check)", images: [], errors: [], gainPlots: 0, raw: text)
        }
        return Check(state: state, images: p.images, errors: p.errors, gainPlots: p.gainPlots, raw: text)
    }

    /// A screenshot of the page at `width`×`height`, checked to be a real picture of that size.
    func screenshot(_ page: URL, to png: URL, width: Int, height: Int, profile: URL) throws {
        try? FileManager.default.removeItem(at: png)
        let r = try TestSupport.run(path, arguments(profile) + ["--screenshot=\(png.path)", "--window-size=\(width),\(height)", page.absoluteString], timeout: 90)
        #expect(r.status == 0, "chromium --screenshot: \(r.output.suffix(1500))")
        let shot = try PNG.decode(try Data(contentsOf: png))
        #expect(shot.width == width && shot.height == height, "screenshot is \(shot.width)×\(shot.height)")
        var colours = Set<Int>()
        for i in stride(from: 0, to: shot.pixels.count, by: shot.channels * 97) {
            colours.insert(Int(shot.pixels[i]) << 16 | Int(shot.pixels[i + 1]) << 8 | Int(shot.pixels[i + 2]))
        }
        #expect(colours.count > 100, "the screenshot looks blank (\(colours.count) colours)")
    }
}
