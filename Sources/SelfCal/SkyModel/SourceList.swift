import Foundation
import SelfCalSupport

/// WSClean/BBS (makesourcedb) source lists, read and written:
///
///     format = Name, Type, Ra, Dec, I, SpectralIndex, LogarithmicSI, ReferenceFrequency='1400000000', MajorAxis, MinorAxis, Orientation
///     C1,POINT,13:31:08.288000,+30.30.33.00000,4,[-0.7],true,1400000000,,,
///     C2,GAUSSIAN,13:31:20.000000,+30.35.00.00000,0.5,[-0.7],true,1400000000,60,40,30
///
/// RA is `h:m:s` (or `…deg`), Dec `d.m.s`; `I` in Jy; axes are FWHM in arcsec, `Orientation`
/// the position angle in degrees. Spectra: `LogarithmicSI=true` with one term is a power law
/// S·(ν/ν₀)^α; flat spectra in either form are read; curvature terms and ordinary-polynomial
/// spectra are refused (selfcal's components are power laws). Patch lines (empty Name and
/// Type) are skipped.
public enum SourceList {
    /// Reads a source list. Throws `.badInput` naming the file and line on a missing `format`
    /// line, a missing column, an unreadable value or an unsupported spectrum.
    public static func read(path: String) throws(PipelineError) -> CatalogTable {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw PipelineError(.badInput, "the source list cannot be read as text: \(error.localizedDescription)", context: path)
        }
        var columns: [String] = []
        var defaults: [String: String] = [:]
        var out = CatalogTable()
        out.names = []
        var refFreqs: [Double] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNo = i + 1
            var line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            if columns.isEmpty {
                // "format = A, B, ..." or makesourcedb's "# (A, B, ...) = format".
                var spec: String?
                let lower = line.lowercased()
                if lower.hasPrefix("format"), let eq = line.firstIndex(of: "=") {
                    spec = String(line[line.index(after: eq)...])
                } else if lower.hasPrefix("#"), lower.hasSuffix("format"), let open = line.firstIndex(of: "("),
                          let close = line.lastIndex(of: ")") {
                    spec = String(line[line.index(after: open)..<close])
                }
                if let spec {
                    for field in splitFields(spec) {
                        let parts = field.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                        let name = parts[0].lowercased()
                        columns.append(name)
                        if parts.count == 2 { defaults[name] = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "'\"")) }
                    }
                    for need in ["name", "type", "ra", "dec", "i"] where !columns.contains(need) {
                        throw PipelineError(.badInput, "line \(lineNo): the format line has no \(need.capitalized) column", context: path)
                    }
                    continue
                }
                if line.hasPrefix("#") { continue }
                throw PipelineError(.badInput, "line \(lineNo): expected a 'format = Name, Type, Ra, Dec, I, ...' line before the sources (is this a WSClean/BBS source list?)", context: path)
            }
            if line.hasPrefix("#") { continue }
            if let hash = line.firstIndex(of: "#") { line = String(line[..<hash]) }
            let f = splitFields(line)
            func value(_ key: String) -> String? {
                if let i = columns.firstIndex(of: key), i < f.count, !f[i].isEmpty { return f[i] }
                return defaults[key]
            }
            let type = (value("type") ?? "").uppercased()
            if type.isEmpty && (value("name") ?? "").isEmpty { continue }  // a patch
            guard type == "POINT" || type == "GAUSSIAN" else {
                throw PipelineError(.badInput, "line \(lineNo): unknown component type '\(type)' (POINT or GAUSSIAN)", context: path)
            }
            guard let raText = value("ra"), let decText = value("dec"), let ra = parseAngle(raText, hours: true),
                  let dec = parseAngle(decText, hours: false) else {
                throw PipelineError(.badInput, "line \(lineNo): cannot read the position '\(value("ra") ?? "")', '\(value("dec") ?? "")' (RA h:m:s, Dec d.m.s)", context: path)
            }
            guard let iText = value("i"), let flux = Double(iText) else {
                throw PipelineError(.badInput, "line \(lineNo): cannot read the flux I '\(value("i") ?? "")'", context: path)
            }
            let terms = try spectralTerms(value("spectralindex"), line: lineNo, path: path)
            let logarithmic = (value("logarithmicsi") ?? "true").lowercased() == "true"
            var alpha = 0.0
            if terms.dropFirst().contains(where: { $0 != 0 }) || (!logarithmic && terms.contains { $0 != 0 }) {
                throw PipelineError(.badInput, "line \(lineNo): only power-law spectra (LogarithmicSI=true with one term) are supported, got \(logarithmic ? "logarithmic" : "ordinary polynomial") terms \(terms)", context: path)
            }
            alpha = terms.first ?? 0
            let refText = value("referencefrequency")
            let ref = refText.flatMap(Double.init) ?? 0
            if terms.contains(where: { $0 != 0 }), !(ref > 0) {
                throw PipelineError(.badInput, "line \(lineNo): a spectral index needs a ReferenceFrequency", context: path)
            }
            var shape: GaussianShape?
            if type == "GAUSSIAN" {
                let a2r = Double.pi / 180 / 3600
                guard let maj = value("majoraxis").flatMap(Double.init), let mnr = value("minoraxis").flatMap(Double.init) else {
                    throw PipelineError(.badInput, "line \(lineNo): a GAUSSIAN needs MajorAxis and MinorAxis (arcsec)", context: path)
                }
                let pa = value("orientation").flatMap(Double.init) ?? 0
                shape = GaussianShape(majorAxis: max(maj, mnr) * a2r, minorAxis: min(maj, mnr) * a2r, positionAngle: pa * .pi / 180)
            }
            out.append(SkyComponent(name: value("name") ?? "", ra: ra, dec: dec, flux: flux, spectralIndex: alpha,
                                    referenceFrequency: ref > 0 ? ref : 1.4e9, shape: shape))
            refFreqs.append(ref > 0 ? ref : 1.4e9)
        }
        guard !columns.isEmpty else {
            throw PipelineError(.badInput, "no 'format = Name, Type, Ra, Dec, I, ...' line (is this a WSClean/BBS source list?)", context: path)
        }
        // One reference frequency per table: rescale the others' fluxes onto the first.
        if let ref = refFreqs.first {
            out.referenceFrequency = ref
            for k in 0..<out.count where refFreqs[k] != ref {
                out.flux[k] = Float(Double(out.flux[k]) * pow(ref / refFreqs[k], Double(out.spectralIndex[k])))
            }
        }
        out.source = path
        return out
    }

    /// Writes components as a source list (power-law spectra, logarithmic, one reference
    /// frequency per component). Throws `.badInput` when the file cannot be written.
    public static func write(_ components: [SkyComponent], to path: String) throws(PipelineError) {
        let ref = components.first?.referenceFrequency ?? 1.4e9
        var text = "format = Name, Type, Ra, Dec, I, SpectralIndex, LogarithmicSI, ReferenceFrequency='\(formatNumber(ref))', MajorAxis, MinorAxis, Orientation\n"
        let r2a = 180 / Double.pi * 3600
        for (i, c) in components.enumerated() {
            var name = c.name.isEmpty ? "C\(i + 1)" : c.name
            name = name.replacingOccurrences(of: ",", with: "_").replacingOccurrences(of: " ", with: "_")
            var fields = [name, c.shape == nil ? "POINT" : "GAUSSIAN", formatRA(c.ra), formatDec(c.dec),
                          formatNumber(c.flux), "[\(formatNumber(c.spectralIndex))]", "true", formatNumber(c.referenceFrequency)]
            if let s = c.shape {
                fields += [formatNumber(s.majorAxis * r2a), formatNumber(s.minorAxis * r2a), formatNumber(s.positionAngle * 180 / .pi)]
            } else {
                fields += ["", "", ""]
            }
            text += fields.joined(separator: ",") + "\n"
        }
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw PipelineError(.badInput, "cannot write the source list: \(error.localizedDescription)", context: path)
        }
    }

    /// Splits on commas outside brackets and quotes.
    static func splitFields(_ line: String) -> [String] {
        var out: [String] = []
        var cur = ""
        var depth = 0
        var quote: Character?
        for ch in line {
            if let q = quote {
                if ch == q { quote = nil }
                cur.append(ch)
                continue
            }
            switch ch {
            case "'", "\"": quote = ch; cur.append(ch)
            case "[": depth += 1; cur.append(ch)
            case "]": depth -= 1; cur.append(ch)
            case "," where depth == 0: out.append(cur.trimmingCharacters(in: .whitespaces)); cur = ""
            default: cur.append(ch)
            }
        }
        out.append(cur.trimmingCharacters(in: .whitespaces))
        return out
    }

    static func spectralTerms(_ text: String?, line: Int, path: String) throws(PipelineError) -> [Double] {
        guard var t = text?.trimmingCharacters(in: .whitespaces), !t.isEmpty else { return [] }
        t = t.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if t.trimmingCharacters(in: .whitespaces).isEmpty { return [] }
        var terms: [Double] = []
        for p in t.split(separator: ",") {
            guard let v = Double(p.trimmingCharacters(in: .whitespaces)), v.isFinite else {
                throw PipelineError(.badInput, "line \(line): cannot read the spectral index '\(text ?? "")'", context: path)
            }
            terms.append(v)
        }
        return terms
    }

    /// `hh:mm:ss.ssssss`, RA in 0..<24 h.
    static func formatRA(_ ra: Double) -> String {
        let totalMicro = Int((wrap360(ra * 180 / .pi) / 15 * 3600 * 1e6).rounded()) % (24 * 3600 * 1_000_000)
        let h = totalMicro / 3_600_000_000, m = (totalMicro / 60_000_000) % 60, us = totalMicro % 60_000_000
        return String(format: "%02d:%02d:%02d.%06d", h, m, us / 1_000_000, us % 1_000_000)
    }

    /// `+dd.mm.ss.sssss`.
    static func formatDec(_ dec: Double) -> String {
        let total = Int((abs(dec) * 180 / .pi * 3600 * 1e5).rounded())
        let d = total / 360_000_000, m = (total / 6_000_000) % 60, u = total % 6_000_000
        return String(format: "%@%02d.%02d.%02d.%05d", dec < 0 ? "-" : "+", d, m, u / 100_000, u % 100_000)
    }
}

/// A number as short as it reads back exactly.
func formatNumber(_ x: Double) -> String {
    if x == x.rounded(), abs(x) < 1e15 { return String(Int(x)) }
    return "\(x)"
}
