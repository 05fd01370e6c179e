import Foundation
import Imaging
import SelfCalSupport

/// `report.html`: one self-contained page about a run (images as data: URIs, plots as inline
/// SVG) — the summary, the rounds, image previews with catalog and mask overlays, and gain
/// plots — and `batch-report.html` for a batch directory.
///
/// Every section renders from what is there: a failed or interrupted run's report says what
/// happened and shows the images and tables that exist; a section that cannot be drawn says why.
public enum HTMLReport {
    public static let fileName = "report.html"
    public static let batchFileName = "batch-report.html"
    /// The element a tiny inline script fills after the page loaded: `data-state` "ok" or
    /// "failed", and a JSON text with every image's decoded size and colour count and any errors.
    public static let checkElementID = "selfcal-report-check"

    /// Writes `report.html` into `outputDir` from its `report.json` and the files beside it.
    /// `catalog` overrides the seeding record's catalog for the overlay (an NVSS-layout FITS table).
    ///
    /// Throws `.badInput` when `report.json` is missing or unreadable, or the page cannot be written.
    @discardableResult
    public static func write(outputDir: String, catalog: String? = nil) throws -> String {
        let report: RunReport
        do {
            report = try RunReport.load(from: outputDir)
        } catch let e as PipelineError {
            throw e
        } catch {
            throw PipelineError(.badInput, "report.json cannot be read: \(error)", context: (outputDir as NSString).appendingPathComponent("report.json"))
        }
        let html = render(report, outputDir: outputDir, catalog: catalog)
        let path = (outputDir as NSString).appendingPathComponent(fileName)
        try writeAtomically(html, to: path)
        return path
    }

    /// Writes `batch-report.html` into `batchDir` from its `batch-summary.json`: one row per MS
    /// with its status, SNR before and after, a thumbnail and a link to its own report (written
    /// first where the run left a `report.json` but no `report.html`).
    ///
    /// Throws `.badInput` when `batch-summary.json` is missing or not in the expected shape.
    @discardableResult
    public static func writeBatch(batchDir: String) throws -> String {
        let entries = try BatchReportRow.load(batchDir: batchDir)
        let html = renderBatch(entries, batchDir: batchDir)
        let path = (batchDir as NSString).appendingPathComponent(batchFileName)
        try writeAtomically(html, to: path)
        return path
    }

    static func writeAtomically(_ html: String, to path: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        do {
            try Data(html.utf8).write(to: URL(fileURLWithPath: tmp))
        } catch {
            throw PipelineError(.badInput, "cannot write the report: \(error.localizedDescription)", context: path)
        }
        guard rename(tmp, path) == 0 else {
            try? FileManager.default.removeItem(atPath: tmp)
            throw PipelineError(.badInput, "cannot rename the finished report into place", context: path)
        }
    }

    // MARK: The run report

    static func render(_ r: RunReport, outputDir: String, catalog: String?) -> String {
        var page = Page(title: "selfcal — \((r.ms as NSString).lastPathComponent)")
        page.body += header(r)
        page.body += summary(r)
        page.body += roundsSection(r)
        page.body += imagesSection(r, outputDir: outputDir, catalog: catalog, page: &page)
        page.body += gainsSection(r, outputDir: outputDir)
        page.body += "<footer>Written by <code>selfcal report</code> on \(htmlEscape(ISO8601DateFormatter().string(from: Date()))) from "
        page.body += "<code>\(htmlEscape((outputDir as NSString).appendingPathComponent("report.json")))</code>.</footer>"
        return page.html
    }

    static func statusClass(_ s: RunStatus) -> String {
        switch s {
        case .converged, .maxIterations: return "good"
        case .diverged, .lowSNR: return "warn"
        case .failed, .interrupted: return "bad"
        case .running: return "neutral"
        }
    }

    static func statusClass(_ s: String) -> String {
        RunStatus(rawValue: s).map { statusClass($0) } ?? (s == "succeeded" || s == "done" ? "good" : "neutral")
    }

    /// A sentence saying what happened, for the top of the page.
    static func headline(_ r: RunReport) -> String {
        let done = r.rounds.count, accepted = r.rounds.filter(\.accepted).count
        let rounds = "\(done) completed round\(done == 1 ? "" : "s") (\(accepted) accepted)"
        switch r.status {
        case .converged: return "Converged after \(rounds)."
        case .maxIterations: return "Ran every planned round: \(rounds)."
        case .diverged: return "Stopped because a round made the image worse, after \(rounds)."
        case .lowSNR: return "Stopped before self-calibration: the initial image's SNR is too low."
        case .failed: return "The run failed after \(rounds). What it had made is shown below."
        case .interrupted: return "The run was interrupted after \(rounds). What it had made is shown below."
        case .running: return "The run had not finished when this report was written (or its process died), after \(rounds)."
        }
    }

    static func header(_ r: RunReport) -> String {
        var s = "<header><div class=\"title\"><h1>Self-calibration of <code>\(htmlEscape((r.ms as NSString).lastPathComponent))</code></h1>"
        s += "<span id=\"run-status\" class=\"badge \(statusClass(r.status))\" data-status=\"\(r.status.rawValue)\">\(htmlEscape(r.status.rawValue.replacingOccurrences(of: "_", with: " ")))</span></div>"
        s += "<p class=\"headline\">\(htmlEscape(headline(r)))</p>"
        if !r.stopReason.isEmpty { s += "<p id=\"stop-reason\" class=\"reason\">\(htmlEscape(r.stopReason))</p>" }
        if let e = r.error { s += "<div id=\"run-error\" class=\"errorbox\"><strong>Error:</strong> \(htmlEscape(e))</div>" }
        s += "</header>"
        return s
    }

    static func summary(_ r: RunReport) -> String {
        var rows: [(String, String)] = []
        rows.append(("Measurement Set", "<code>\(htmlEscape(r.ms))</code>"))
        rows.append(("Output directory", "<code>\(htmlEscape(r.outputDir))</code>"))
        rows.append(("Started", htmlEscape(r.startedAt)))
        rows.append(("Wall time", String(format: "%.1f s", r.wallS)))
        rows.append(("Executor", htmlEscape(r.executor)))
        if let s = r.seeding {
            var v = "\(htmlEscape(s.model.rawValue)) model, \(s.components) component\(s.components == 1 ? "" : "s"), predicted by \(htmlEscape(s.method.rawValue))"
            if let c = s.catalog { v += "; catalog <code>\(htmlEscape(c))</code>" }
            if let m = s.mask { v += "; mask <code>\(htmlEscape(m))</code>" }
            if s.fallback {
                v += "<div class=\"fallback\">Fell back to the calibrator model\(s.fallbackReason.map { ": " + htmlEscape($0) } ?? "")</div>"
            }
            rows.append(("Seeding", v))
        } else {
            rows.append(("Seeding", "<span class=\"muted\">not reached</span>"))
        }
        func m(_ x: ImageMetrics?) -> String {
            x.map { String(format: "SNR %.1f (peak %@, rms %@)", $0.snr, formatJy($0.peakJy), formatJy($0.rmsJy)) } ?? "<span class=\"muted\">none</span>"
        }
        rows.append(("Initial image", m(r.initial)))
        var fin = m(r.final)
        if let a = r.initial, let b = r.final, a.snr > 0 { fin += String(format: " — <strong>×%.2f</strong>", b.snr / a.snr) }
        rows.append(("Final image", fin))
        rows.append(("Final table", r.finalCaltable.map { "<code>\(htmlEscape($0))</code>" } ?? "<span class=\"muted\">none (no round was accepted)</span>"))
        rows.append(("Exit code", String(r.exitCode)))

        var s = "<section id=\"summary\"><h2>Summary</h2><div class=\"two\"><table class=\"kv\">"
        for (k, v) in rows { s += "<tr><th>\(k)</th><td>\(v)</td></tr>" }
        s += "</table><div>"
        let timings = r.timings.sorted { $0.value > $1.value }
        if !timings.isEmpty {
            let top = max(timings[0].value, 1e-9)
            s += "<h3>Where the time went</h3><table id=\"timings\" class=\"bars\">"
            for (k, v) in timings {
                s += "<tr><th>\(htmlEscape(k.replacingOccurrences(of: "_", with: " ")))</th><td><div class=\"bar\" style=\"width:\(String(format: "%.1f", 100 * v / top))%\"></div></td>"
                s += "<td class=\"num\">\(String(format: "%.1f s", v))</td></tr>"
            }
            s += "</table>"
        }
        if !r.warnings.isEmpty {
            s += "<h3>Warnings</h3><ul id=\"warnings\" class=\"warnings\">"
            for w in r.warnings { s += "<li>\(htmlEscape(w))</li>" }
            s += "</ul>"
        }
        s += "</div></div></section>"
        return s
    }

    static func roundsSection(_ r: RunReport) -> String {
        var s = "<section id=\"rounds\"><h2>Rounds</h2>"
        guard r.initial != nil || !r.rounds.isEmpty else {
            return s + "<p class=\"note\">No image was made: the run stopped before its initial image.</p></section>"
        }
        s += "<div class=\"two\"><table id=\"rounds-table\" class=\"grid\"><thead><tr><th>#</th><th>calmode</th><th>solint</th><th>result</th>"
        s += "<th>peak</th><th>rms</th><th>SNR</th><th>flagged sol.</th><th>wall</th></tr></thead><tbody>"
        if let i = r.initial {
            s += "<tr class=\"initial\"><td>0</td><td colspan=\"2\">initial image of DATA</td><td></td><td class=\"num\">\(formatJy(i.peakJy))</td>"
            s += "<td class=\"num\">\(formatJy(i.rmsJy))</td><td class=\"num\">\(String(format: "%.1f", i.snr))</td><td></td><td></td></tr>"
        }
        for round in r.rounds {
            let result = round.accepted ? "<span class=\"badge small good\">accepted</span>" : "<span class=\"badge small bad\">rolled back</span>"
            s += "<tr class=\"round \(round.accepted ? "accepted" : "rejected")\" data-index=\"\(round.index)\"><td>\(round.index)</td>"
            s += "<td>\(htmlEscape(round.calmode))</td><td>\(htmlEscape(round.solint))</td><td>\(result)</td>"
            s += "<td class=\"num\">\(formatJy(round.peakJy))</td><td class=\"num\">\(formatJy(round.rmsJy))</td>"
            s += "<td class=\"num\">\(String(format: "%.1f", round.snr))</td><td class=\"num\">\(String(format: "%.1f%%", 100 * round.flaggedSolutions))</td>"
            s += "<td class=\"num\">\(String(format: "%.1f s", round.wallS))</td></tr>"
            if let note = round.note { s += "<tr class=\"note-row\"><td></td><td colspan=\"8\">\(htmlEscape(note))</td></tr>" }
        }
        if r.rounds.isEmpty { s += "<tr><td colspan=\"9\" class=\"muted\">no self-calibration round completed</td></tr>" }
        s += "</tbody></table>"
        s += GainPlot.snrChart(initial: r.initial?.snr, rounds: r.rounds)
        s += "</div></section>"
        return s
    }

    // MARK: Images

    /// Where a path written into report.json is now: as written, or under `outputDir` by its
    /// last `components` path components (the directory may have been moved).
    static func locate(_ path: String, outputDir: String, components: Int = 2) -> String? {
        if FileManager.default.fileExists(atPath: path) { return path }
        let tail = (path as NSString).pathComponents.suffix(components)
        let moved = ([outputDir] + tail).joined(separator: "/")
        return FileManager.default.fileExists(atPath: moved) ? moved : nil
    }

    /// The prefix of the run's final image (the last accepted round's), or nil when no round was accepted.
    static func finalImagePrefix(_ r: RunReport) -> String? {
        r.rounds.last(where: \.accepted).map { String(format: "round-%02d/image", $0.index) }
    }

    static func imagesSection(_ r: RunReport, outputDir: String, catalog: String?, page: inout Page) -> String {
        var s = "<section id=\"images\"><h2>Images</h2>"
        let catalogPath = catalog ?? r.seeding?.catalog
        var components: [SkyComponent] = []
        var notes: [String] = []
        if let c = catalogPath {
            do {
                components = try readCatalog(c)
            } catch {
                notes.append("The catalog \(c) could not be read (\(error)); no sources are marked.")
            }
        }
        var mask: FITSImage?
        if let m = r.seeding?.mask {
            if let p = locate(m, outputDir: outputDir, components: 1) {
                do { mask = try FITSImage.read(path: p) } catch { notes.append("The mask \(m) could not be read (\(error)).") }
            } else {
                notes.append("The mask \(m) is missing.")
            }
        }
        var legend = [String]()
        if catalogPath != nil { legend.append("<span class=\"key src\"></span> catalog sources (\(htmlEscape((catalogPath! as NSString).lastPathComponent)))") }
        if mask != nil { legend.append("<span class=\"key mask\"></span> clean mask outline") }
        if !legend.isEmpty { s += "<p class=\"legend\">Overlays: \(legend.joined(separator: " · ")). North is up, east is left.</p>" }
        for n in notes { s += "<p class=\"note\">\(htmlEscape(n))</p>" }

        let finalPrefix = finalImagePrefix(r)
        let panels: [(id: String, title: String, file: String?, residual: Bool)] = [
            ("initial-image", "Initial image (DATA)", "initial/image-image.fits", false),
            ("final-image", finalPrefix.map { "Final image (round \($0.dropFirst(6).prefix(2)))" } ?? "Final image", finalPrefix.map { $0 + "-image.fits" }, false),
            ("initial-residual", "Initial residual", "initial/image-residual.fits", true),
            ("final-residual", finalPrefix.map { "Final residual (round \($0.dropFirst(6).prefix(2)))" } ?? "Final residual", finalPrefix.map { $0 + "-residual.fits" }, true),
        ]
        s += "<div class=\"figures\">"
        for p in panels {
            s += "<figure id=\"fig-\(p.id)\"><figcaption><strong>\(htmlEscape(p.title))</strong>"
            guard let file = p.file else {
                s += "</figcaption><div class=\"missing\">No round was accepted, so the final image is the initial one.</div></figure>"
                continue
            }
            let path = (outputDir as NSString).appendingPathComponent(file)
            s += " <code>\(htmlEscape(file))</code></figcaption>"
            guard FileManager.default.fileExists(atPath: path) else {
                s += "<div class=\"missing\">Not made: the run stopped before this image (\(htmlEscape(file)) does not exist).</div></figure>"
                continue
            }
            do {
                let image = try FITSImage.read(path: path)
                var preview = try ImagePreview.render(image, stretch: p.residual ? .forResidual(image.pixels) : .forImage(image.pixels),
                                                      colormap: p.residual ? .diverging : .inferno)
                if let wcs = try? image.wcs() { try preview.place(components, wcs: wcs) }
                if let mask { preview.outline(mask: mask) }
                if mask != nil && preview.maskOutline == nil { s += "<p class=\"note\">The mask's size differs from the image's: no outline.</p>" }
                s += previewHTML(preview, id: p.id, file: file, unit: image.value(forKey: "BUNIT") ?? "Jy/beam")
            } catch {
                s += "<div class=\"missing\">Cannot be shown: \(htmlEscape("\(error)"))</div>"
            }
            s += "</figure>"
        }
        s += "</div></section>"
        return s
    }

    static func previewHTML(_ p: ImagePreview, id: String, file: String, unit: String) -> String {
        var s = "<div class=\"preview\" style=\"aspect-ratio:\(p.width)/\(p.height)\">"
        s += "<img id=\"img-\(id)\" class=\"preview-image\" alt=\"\(htmlEscape(file))\" width=\"\(p.width)\" height=\"\(p.height)\" "
        s += "data-fits=\"\(htmlEscape(file))\" data-factor=\"\(p.factor)\" src=\"\(PNG.dataURI(p.png))\">"
        s += "<svg class=\"overlay\" viewBox=\"0 0 \(p.width) \(p.height)\" preserveAspectRatio=\"none\">"
        if let d = p.maskOutline, !d.isEmpty {
            s += "<path class=\"mask-outline\" d=\"\(d)\" fill=\"none\" stroke=\"#4dff88\" stroke-width=\"1.5\" stroke-dasharray=\"3 2\" vector-effect=\"non-scaling-stroke\"/>"
        }
        let radius = max(4, Double(p.width) / 40)
        let brightest = p.sources.map(\.fluxJy).max() ?? 1
        for src in p.sources {
            let (cx, cy) = p.pngPoint(x: src.x, y: src.y)
            let r = radius * (0.7 + 0.6 * (src.fluxJy / brightest).squareRoot())
            s += "<circle class=\"catalog-source\" cx=\"\(String(format: "%.3f", cx))\" cy=\"\(String(format: "%.3f", cy))\" r=\"\(String(format: "%.1f", r))\" "
            s += "data-name=\"\(htmlEscape(src.name))\" data-ra=\"\(src.raDeg)\" data-dec=\"\(src.decDeg)\" data-flux=\"\(src.fluxJy)\" "
            s += "data-x=\"\(String(format: "%.4f", src.x))\" data-y=\"\(String(format: "%.4f", src.y))\" "
            s += "fill=\"none\" stroke=\"#33e0ff\" stroke-width=\"1.5\" vector-effect=\"non-scaling-stroke\">"
            s += "<title>\(htmlEscape(src.name.isEmpty ? "source" : src.name)): \(formatJy(src.fluxJy)) at RA \(String(format: "%.4f", src.raDeg))°, Dec \(String(format: "%.4f", src.decDeg))°</title></circle>"
        }
        s += "</svg></div>"
        s += p.colourBarSVG(id: "cb-\(id)", unit: unit)
        s += "<p class=\"caption\">\(p.imageWidth)×\(p.imageHeight) pixels"
        if p.factor > 1 { s += ", shown averaged \(p.factor)×\(p.factor)" }
        s += "; \(htmlEscape(p.stretch.description)); colour map \(p.colormap.name); \(htmlEscape(unit))"
        if !p.sources.isEmpty { s += "; \(p.sources.count) catalog source\(p.sources.count == 1 ? "" : "s") in the field" }
        s += ".</p>"
        return s
    }

    /// Sources of an NVSS-layout FITS catalog (`RA(2000)`, `DEC(2000)` in degrees, `PEAK INT` in Jy).
    static func readCatalog(_ path: String) throws -> [SkyComponent] {
        let t = try FITSTable.read(path: path)
        let ra = try t.doubles("RA(2000)"), dec = try t.doubles("DEC(2000)"), flux = try t.doubles("PEAK INT")
        let names = (try? t.strings("NAME")) ?? []
        var out = [SkyComponent]()
        out.reserveCapacity(ra.count)
        for i in 0..<min(ra.count, dec.count, flux.count) {
            out.append(SkyComponent(name: i < names.count ? names[i] : "#\(i + 1)", ra: ra[i] * .pi / 180, dec: dec[i] * .pi / 180, flux: flux[i]))
        }
        return out
    }

    // MARK: Gains

    /// Every accepted round's table in order, then any accepted table no round names.
    static func acceptedTables(_ r: RunReport) -> [String] {
        var tables = r.rounds.filter(\.accepted).map(\.caltable)
        for t in r.acceptedCaltables where !tables.contains(t) { tables.append(t) }
        return tables
    }

    static func gainsSection(_ r: RunReport, outputDir: String) -> String {
        var s = "<section id=\"gains\"><h2>Gains of the accepted tables</h2>"
        let tables = acceptedTables(r)
        guard !tables.isEmpty else {
            return s + "<p class=\"note\">No table was accepted, so there are no gains to plot.</p></section>"
        }
        s += "<p class=\"caption\">Each accepted round's solutions, per antenna (reference antenna phase 0). "
        s += "The final calibration applies the tables marked <em>in use</em>.</p>"
        for table in tables {
            let round = r.rounds.first { $0.caltable == table }
            let label = round.map { "Round \($0.index): calmode \($0.calmode), solint \($0.solint)" } ?? (table as NSString).lastPathComponent
            let inUse = r.acceptedCaltables.contains(table)
            s += "<div class=\"gaintable\" data-table=\"\(htmlEscape(table))\"><h3>\(htmlEscape(label)) <code>\(htmlEscape((table as NSString).pathComponents.suffix(2).joined(separator: "/")))</code>"
            s += inUse ? " <span class=\"badge small good\">in use</span>" : " <span class=\"badge small neutral\">superseded</span>"
            s += "</h3>"
            guard let path = locate(table, outputDir: outputDir) else {
                s += "<p class=\"note\">The table is missing.</p></div>"
                continue
            }
            do {
                let t = try GainTable.read(path: path)
                let names = (try? CasaTable(path: path).subtable("ANTENNA").strings("NAME")) ?? []
                let flagged = t.solutions.reduce(0) { $0 + $1.flags.filter { $0 }.count }
                s += "<p class=\"caption\">\(t.solutions.count) solutions (antenna × interval × spectral window); "
                s += "\(flagged) of \(2 * t.solutions.count) receptor solutions flagged.</p>"
                s += "<h4>Phase</h4>" + GainPlot.svg(t, quantity: .phase, antennaNames: names, title: label + ": phase")
                let unitAmplitudes = t.solutions.allSatisfy { sol in
                    (0..<2).allSatisfy { sol.flags[$0] || abs((sol.gains[$0] * sol.gains[$0]).sum().squareRoot() - 1) < 1e-4 }
                }
                if unitAmplitudes {
                    s += "<h4>Amplitude</h4><p class=\"note amp-unity\">Every unflagged amplitude is 1 (a phase-only solve): nothing to plot.</p>"
                } else {
                    s += "<h4>Amplitude</h4>" + GainPlot.svg(t, quantity: .amplitude, antennaNames: names, title: label + ": amplitude")
                }
            } catch {
                s += "<p class=\"note\">Cannot be read: \(htmlEscape("\(error)"))</p>"
            }
            s += "</div>"
        }
        s += "</section>"
        return s
    }

    // MARK: Batch report

    static func renderBatch(_ entries: [BatchReportRow], batchDir: String) -> String {
        var page = Page(title: "selfcal batch — \((batchDir as NSString).lastPathComponent)")
        var counts: [String: Int] = [:]
        for e in entries { counts[e.status, default: 0] += 1 }
        page.body += "<header><div class=\"title\"><h1>Batch <code>\(htmlEscape((batchDir as NSString).lastPathComponent))</code></h1></div>"
        page.body += "<p class=\"headline\">\(entries.count) Measurement Set\(entries.count == 1 ? "" : "s"): "
        page.body += counts.sorted { $0.key < $1.key }.map { "<span class=\"badge small \(statusClass($0.key))\">\(htmlEscape($0.key))</span> \($0.value)" }.joined(separator: " ")
        page.body += "</p></header><section><table id=\"batch-table\" class=\"grid batch\"><thead><tr><th>Measurement Set</th><th>status</th>"
        page.body += "<th>SNR before</th><th>SNR after</th><th>gain</th><th>rounds</th><th>wall</th><th>final image</th><th>report</th></tr></thead><tbody>"
        for (i, e) in entries.enumerated() {
            page.body += "<tr class=\"batch-row\" data-status=\"\(htmlEscape(e.status))\"><td><code>\(htmlEscape((e.ms as NSString).lastPathComponent))</code>"
            if let err = e.error { page.body += "<div class=\"errorline\">\(htmlEscape(err))</div>" }
            page.body += "</td><td><span class=\"badge small \(statusClass(e.status))\">\(htmlEscape(e.status))</span></td>"
            page.body += "<td class=\"num\">\(e.initialSNR.map { String(format: "%.1f", $0) } ?? "–")</td>"
            page.body += "<td class=\"num\">\(e.finalSNR.map { String(format: "%.1f", $0) } ?? "–")</td>"
            let ratio = (e.initialSNR ?? 0) > 0 ? e.finalSNR.map { String(format: "×%.2f", $0 / e.initialSNR!) } : nil
            page.body += "<td class=\"num\">\(ratio ?? "–")</td><td class=\"num\">\(e.rounds.map(String.init) ?? "–")</td>"
            page.body += "<td class=\"num\">\(e.wallS.map { String(format: "%.0f s", $0) } ?? "–")</td><td>"
            if let dir = e.outputDir.map({ resolve($0, in: batchDir) }) {
                let reportPath = (dir as NSString).appendingPathComponent(fileName)
                if !FileManager.default.fileExists(atPath: reportPath),
                   FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent("report.json")) {
                    _ = try? write(outputDir: dir)
                }
                let href = FileManager.default.fileExists(atPath: reportPath) ? htmlEscape(relativeHref(reportPath, from: batchDir)) : nil
                let thumb = thumbnail(outputDir: dir, id: "thumb-\(i)")
                page.body += href.map { "<a href=\"\($0)\">\(thumb)</a>" } ?? thumb
                page.body += "</td><td>" + (href.map { "<a class=\"report-link\" href=\"\($0)\">report.html</a>" } ?? "<span class=\"muted\">none</span>")
                page.body += "</td></tr>"
            } else {
                page.body += "<span class=\"muted\">–</span></td><td><span class=\"muted\">none</span></td></tr>"
            }
        }
        page.body += "</tbody></table></section>"
        page.body += "<footer>Written by <code>selfcal report</code> on \(htmlEscape(ISO8601DateFormatter().string(from: Date()))) from "
        page.body += "<code>\(htmlEscape((batchDir as NSString).appendingPathComponent("batch-summary.json")))</code>.</footer>"
        return page.html
    }

    static func resolve(_ path: String, in dir: String) -> String {
        path.hasPrefix("/") ? path : (dir as NSString).appendingPathComponent(path)
    }

    /// A link from `dir`'s page to `path`: relative when inside `dir`, a file: URL otherwise.
    static func relativeHref(_ path: String, from dir: String) -> String {
        let p = URL(fileURLWithPath: path).standardizedFileURL.path
        let d = URL(fileURLWithPath: dir).standardizedFileURL.path
        if p.hasPrefix(d + "/") {
            return String(p.dropFirst(d.count + 1)).addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? p
        }
        return URL(fileURLWithPath: p).absoluteString
    }

    /// A small preview of a run's final image (the initial one when no round was accepted).
    static func thumbnail(outputDir: String, id: String) -> String {
        let report = try? RunReport.load(from: outputDir)
        let prefix = report.flatMap { finalImagePrefix($0) } ?? "initial/image"
        let path = (outputDir as NSString).appendingPathComponent(prefix + "-image.fits")
        guard let image = try? FITSImage.read(path: path),
              let p = try? ImagePreview.render(image, stretch: .forImage(image.pixels), colormap: .inferno, maxSize: 128) else {
            return "<span class=\"muted\">no image</span>"
        }
        return "<img id=\"\(id)\" class=\"thumb\" width=\"\(p.width)\" height=\"\(p.height)\" alt=\"\(htmlEscape(prefix))\" src=\"\(PNG.dataURI(p.png))\">"
    }
}

/// One MS in `batch-summary.json`: {ms, status, output_dir, initial_snr, final_snr, rounds, wall_s, error}.
/// One row of the batch report, from `batch-summary.json` (written by `BatchSummary`).
struct BatchReportRow {
    var ms: String
    var status: String
    var outputDir: String?
    var initialSNR: Double?
    var finalSNR: Double?
    var rounds: Int?
    var wallS: Double?
    var error: String?

    static func load(batchDir: String) throws -> [BatchReportRow] {
        let path = (batchDir as NSString).appendingPathComponent("batch-summary.json")
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PipelineError(.badInput, "no batch-summary.json (is this a batch directory?)", context: path)
        }
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        let summary: BatchSummary
        do { summary = try dec.decode(BatchSummary.self, from: data) } catch {
            throw PipelineError(.badInput, "not a batch summary: \(error)", context: path)
        }
        return summary.entries.map {
            BatchReportRow(ms: $0.ms, status: $0.status, outputDir: $0.outputDir, initialSNR: $0.initialSnr, finalSNR: $0.finalSnr,
                           rounds: $0.rounds, wallS: $0.wallS, error: $0.error)
        }
    }
}

/// The page frame: style, body, and the self-check script.
struct Page {
    var title: String
    var body = ""

    var html: String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="generator" content="selfcal">
        <title>\(htmlEscape(title))</title>
        <style>\(Page.css)</style>
        <script>\(Page.checkScript)</script>
        </head><body><main>
        \(body)
        <div id="\(HTMLReport.checkElementID)" data-state="pending" hidden></div>
        </main></body></html>

        """
    }

    static let css = """
    :root{--fg:#1d2330;--muted:#6b7280;--line:#e3e6ea;--bg:#f5f6f8;--card:#fff;--good:#1f8f4e;--warn:#b7791f;--bad:#c53030}
    *{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
    main{max-width:1280px;margin:0 auto;padding:20px 24px 40px}
    header,section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 20px;margin-bottom:16px}
    .title{display:flex;align-items:center;gap:14px;flex-wrap:wrap}h1{font-size:21px;margin:0}h2{font-size:17px;margin:0 0 12px}
    h3{font-size:14px;margin:14px 0 6px}h4{font-size:13px;margin:10px 0 2px;color:var(--muted);font-weight:600}
    code{font:12.5px/1.3 ui-monospace,"DejaVu Sans Mono",monospace;background:#f0f1f4;padding:1px 4px;border-radius:4px;word-break:break-all}
    .badge{display:inline-block;padding:3px 12px;border-radius:999px;font-weight:700;text-transform:uppercase;letter-spacing:.04em;font-size:13px;color:#fff;background:#7a8291}
    .badge.small{padding:1px 8px;font-size:11px}.good{background:var(--good)}.warn{background:var(--warn)}.bad{background:var(--bad)}.neutral{background:#7a8291}
    .headline{font-size:15px;margin:10px 0 2px}.reason{margin:2px 0;color:var(--muted)}
    .errorbox{margin-top:10px;padding:10px 12px;border-left:4px solid var(--bad);background:#fdf0f0;border-radius:4px;word-break:break-word}
    .fallback{margin-top:4px;color:var(--warn);font-weight:600}.muted{color:var(--muted)}
    .two{display:grid;grid-template-columns:minmax(0,1.25fr) minmax(0,1fr);gap:24px;align-items:start}
    @media (max-width:900px){.two{grid-template-columns:1fr}}
    table{border-collapse:collapse}.kv th{text-align:left;vertical-align:top;padding:4px 14px 4px 0;color:var(--muted);font-weight:600;white-space:nowrap}.kv td{padding:4px 0}
    .grid{width:100%}.grid th,.grid td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left}.grid thead th{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}
    .num{text-align:right!important;font-variant-numeric:tabular-nums;white-space:nowrap}
    tr.rejected td{color:#8a4a4a}tr.note-row td{border-bottom:1px solid var(--line);font-size:12px;color:var(--muted);padding-top:0}tr.initial td{color:var(--muted)}
    .bars{width:100%}.bars th{text-align:left;font-weight:500;padding:2px 10px 2px 0;white-space:nowrap}.bars td{padding:2px 0}.bars td.num{padding-left:10px}.bars td:nth-child(2){width:100%}
    .bar{height:10px;background:#5b8def;border-radius:3px;min-width:2px}
    .warnings li{color:#7a5a12}
    .figures{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:20px}@media (max-width:900px){.figures{grid-template-columns:1fr}}
    figure{margin:0}figcaption{margin-bottom:6px}
    .preview{position:relative;width:100%;background:#000;border-radius:4px;overflow:hidden}
    .preview img{position:absolute;inset:0;width:100%;height:100%;image-rendering:pixelated}
    .preview svg.overlay{position:absolute;inset:0;width:100%;height:100%}
    .colourbar{display:block;margin-top:4px;font-size:9px;fill:#444}
    .caption{font-size:12px;color:var(--muted);margin:4px 0}
    .missing{padding:40px 16px;text-align:center;color:var(--muted);background:#f0f1f4;border-radius:4px}
    .legend .key{display:inline-block;width:12px;height:12px;border-radius:50%;border:2px solid #33e0ff;vertical-align:-2px;background:#111}
    .legend .key.mask{border-radius:2px;border-color:#3ddc84}
    .note{color:var(--muted);font-style:italic}
    .gaintable{border-top:1px solid var(--line);padding-top:4px;margin-top:8px}.gaintable:first-of-type{border-top:0}
    svg.gain-plot{font-family:system-ui,"DejaVu Sans",sans-serif;max-width:1230px}
    .snr-chart{font-family:system-ui,"DejaVu Sans",sans-serif;max-width:100%}
    .batch td{vertical-align:middle}.thumb{display:block;width:96px;height:96px;image-rendering:pixelated;border-radius:3px;background:#000}
    .errorline{color:var(--bad);font-size:12px;margin-top:2px}
    footer{color:var(--muted);font-size:12px;text-align:center}
    """

    /// Runs after load: records script errors and, for every image, whether it decoded, its size
    /// and how many distinct colours it has, into the check element (read by tests via --dump-dom).
    static let checkScript = """
    (function(){var errors=[];window.addEventListener('error',function(e){errors.push(String(e.message||e));},true);
    window.addEventListener('load',function(){var out={images:[],errors:errors,gainPlots:document.querySelectorAll('svg.gain-plot').length};
    document.querySelectorAll('img').forEach(function(img){var r={id:img.id,w:img.naturalWidth,h:img.naturalHeight,ok:img.complete&&img.naturalWidth>0,colours:0};
    try{var c=document.createElement('canvas');c.width=r.w;c.height=r.h;var x=c.getContext('2d');x.drawImage(img,0,0);
    var d=x.getImageData(0,0,r.w,r.h).data,s=new Set();for(var i=0;i<d.length&&s.size<4096;i+=4){s.add((d[i]<<16)|(d[i+1]<<8)|d[i+2]);}r.colours=s.size;}
    catch(e){errors.push('canvas '+img.id+': '+e);}out.images.push(r);});
    var ok=errors.length===0&&out.images.every(function(r){return r.ok&&r.colours>1;});
    var m=document.getElementById('\(HTMLReport.checkElementID)');m.setAttribute('data-state',ok?'ok':'failed');m.textContent=JSON.stringify(out);});})();
    """
}
