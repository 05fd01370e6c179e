import Foundation
import Imaging
import SelfCalSupport

/// How a catalog's columns map onto sky components: names, units and what the shape columns
/// mean. The defaults are the NVSS catalog's own FITS table (`CATALOG.FIT`, an AIPS VL table).
///
/// NVSS's table holds the *raw fitted* Gaussians (its own programs, NVSSlist and the catalog
/// browser, deconvolve them): `MAJOR AX`/`MINOR AX` include the 45″ restoring beam and
/// `PEAK INT` is a peak in Jy/beam. With `fittedBeamArcsec` set, a component whose fitted axes
/// exceed the beam becomes a Gaussian with the beam removed in quadrature (exact for a circular
/// beam) and integrated flux peak · θM · θm / θb²; one no larger than the beam (or with zero
/// axes, as `NVSSCatalogWriter` writes) is a point of the peak flux.
public struct CatalogColumns: Sendable, Codable, Equatable {
    public enum FluxUnit: String, Sendable, Codable { case jy, mjy }
    public enum AngleUnit: String, Sendable, Codable { case degree, arcsec }

    public var ra: String
    public var dec: String
    public var flux: String
    public var fluxUnit: FluxUnit
    /// Shape columns; nil (or absent from the file) → points.
    public var majorAxis: String?
    public var minorAxis: String?
    public var positionAngle: String?
    /// Unit of the axis columns (the position angle is always degrees).
    public var axisUnit: AngleUnit
    /// A column of source names; nil → names made from the position (`J123456.7+301234`).
    public var name: String?
    /// Set when the axes are fitted sizes that include a restoring beam of this FWHM and the
    /// flux is a peak per beam (see the type's note); nil when the axes are already deconvolved
    /// and the flux integrated.
    public var fittedBeamArcsec: Double?
    /// FITS extension to read (EXTNAME); nil → the first table.
    public var extensionName: String?
    /// Spectral index given to every component (catalogs at one frequency have none).
    public var spectralIndex: Double
    /// Frequency of the catalog's fluxes, Hz.
    public var referenceFrequency: Double

    public init(ra: String = "RA(2000)", dec: String = "DEC(2000)", flux: String = "PEAK INT",
                fluxUnit: FluxUnit = .jy, majorAxis: String? = "MAJOR AX", minorAxis: String? = "MINOR AX",
                positionAngle: String? = "POSANGLE", axisUnit: AngleUnit = .degree, name: String? = nil,
                fittedBeamArcsec: Double? = 45, extensionName: String? = nil,
                spectralIndex: Double = -0.7, referenceFrequency: Double = 1.4e9) {
        self.ra = ra
        self.dec = dec
        self.flux = flux
        self.fluxUnit = fluxUnit
        self.majorAxis = majorAxis
        self.minorAxis = minorAxis
        self.positionAngle = positionAngle
        self.axisUnit = axisUnit
        self.name = name
        self.fittedBeamArcsec = fittedBeamArcsec
        self.extensionName = extensionName
        self.spectralIndex = spectralIndex
        self.referenceFrequency = referenceFrequency
    }

    /// NVSS's own FITS table (the defaults).
    public static let nvss = CatalogColumns()

    /// VizieR's NVSS (VIII/65) as a text table: `RAJ2000`, `DEJ2000` sexagesimal, `S1.4` in
    /// mJy (integrated), `MajAxis`, `MinAxis` in arcsec (deconvolved; `<x` upper limits are
    /// points), `PA`, `NVSS` names.
    public static let vizierNVSS = CatalogColumns(
        ra: "RAJ2000", dec: "DEJ2000", flux: "S1.4", fluxUnit: .mjy, majorAxis: "MajAxis", minorAxis: "MinAxis",
        positionAngle: "PA", axisUnit: .arcsec, name: "NVSS", fittedBeamArcsec: nil)

    /// A key that changes whenever the mapping would read a file differently (for caches).
    var cacheKey: String {
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        return (try? String(decoding: enc.encode(self), as: UTF8.self)) ?? ""
    }

    var fluxScale: Double { fluxUnit == .mjy ? 1e-3 : 1 }
    var axisScale: Double { (axisUnit == .arcsec ? 1.0 / 3600 : 1) * .pi / 180 }
}

/// The catalog formats selfcal reads.
public enum CatalogFormat: String, Sendable, CaseIterable {
    /// A FITS binary (or ASCII) table, NVSS layout by default.
    case fits
    /// A VizieR-style text table: tab-, `|`- or `;`-separated, a header line of names, optional
    /// units and dashes lines; RA/Dec sexagesimal or decimal degrees; flux in mJy.
    case vizier
    /// A WSClean/BBS source list (`format = Name, Type, Ra, Dec, I, ...`).
    case sourceList

    /// Decides by content: FITS files start with `SIMPLE  =`; a source list has a `format`
    /// line; anything else is a text table.
    ///
    /// Throws `.badInput` when the file is missing or unreadable.
    public static func detect(path: String) throws(PipelineError) -> CatalogFormat {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw PipelineError(.badInput, exists ? "the catalog cannot be read (check its permissions)"
                                    : "no such catalog file (check nvss_catalog / --catalog)", context: path)
        }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 8192)) ?? Data()
        if head.starts(with: Data("SIMPLE  =".utf8)) { return .fits }
        let text = String(decoding: head, as: UTF8.self)
        for line in text.split(whereSeparator: \.isNewline) {
            let t = line.trimmingCharacters(in: .whitespaces).lowercased()
            if t.hasPrefix("format") || t.hasPrefix("# (name") || t.hasPrefix("#(name") { return .sourceList }
        }
        return .vizier
    }
}

/// A catalog held as columns (radians, Jy), in file order. Build a `CatalogIndex` from it to
/// search.
public struct CatalogTable: Sendable {
    public var ra: [Double] = []
    public var dec: [Double] = []
    /// Integrated flux, Jy, at `referenceFrequency`.
    public var flux: [Float] = []
    /// Deconvolved FWHM (radians; 0 for points) and position angle (radians).
    public var majorAxis: [Float] = []
    public var minorAxis: [Float] = []
    public var positionAngle: [Float] = []
    public var spectralIndex: [Float] = []
    /// nil → names made from positions.
    public var names: [String]?
    public var referenceFrequency: Double = 1.4e9
    /// Where it came from, for messages.
    public var source: String = ""

    public init() {}

    public var count: Int { ra.count }

    /// Row `i` as a component.
    public func component(_ i: Int) -> SkyComponent {
        let shape: GaussianShape? = majorAxis[i] > 0
            ? GaussianShape(majorAxis: Double(majorAxis[i]), minorAxis: Double(minorAxis[i]), positionAngle: Double(positionAngle[i]))
            : nil
        return SkyComponent(name: names?[i] ?? positionName(ra: ra[i], dec: dec[i]), ra: ra[i], dec: dec[i],
                            flux: Double(flux[i]), spectralIndex: Double(spectralIndex[i]),
                            referenceFrequency: referenceFrequency, shape: shape)
    }

    mutating func append(_ c: SkyComponent) {
        ra.append(c.ra)
        dec.append(c.dec)
        flux.append(Float(c.flux))
        majorAxis.append(Float(c.shape?.majorAxis ?? 0))
        minorAxis.append(Float(c.shape?.minorAxis ?? 0))
        positionAngle.append(Float(c.shape?.positionAngle ?? 0))
        spectralIndex.append(Float(c.spectralIndex))
        if names != nil { names!.append(c.name) }
    }

    /// Every position must be a finite RA and a Dec within ±90°, every flux finite.
    func validate() throws(PipelineError) {
        for i in 0..<count {
            guard ra[i].isFinite, dec[i].isFinite, abs(dec[i]) <= .pi / 2 + 1e-12 else {
                throw PipelineError(.badInput, "row \(i + 1) has an invalid position (RA \(ra[i] * 180 / .pi)°, Dec \(dec[i] * 180 / .pi)°): fix or remove that row", context: source)
            }
            guard flux[i].isFinite else {
                throw PipelineError(.badInput, "row \(i + 1) has a non-finite flux: fix or remove that row", context: source)
            }
        }
    }
}

/// A name from a J2000 position: `J133108.3+303033` (IAU style, truncated).
public func positionName(ra: Double, dec: Double) -> String {
    var h = wrap360(ra * 180 / .pi) / 15
    let hh = Int(h); h = (h - Double(hh)) * 60
    let mm = Int(h); h = (h - Double(mm)) * 60
    let ss10 = Int(h * 10)
    var d = abs(dec * 180 / .pi)
    let dd = Int(d); d = (d - Double(dd)) * 60
    let dm = Int(d); d = (d - Double(dm)) * 60
    let ds = Int(d)
    return String(format: "J%02d%02d%02d.%d%@%02d%02d%02d", hh, mm, ss10 / 10, ss10 % 10, dec < 0 ? "-" : "+", dd, dm, ds)
}

/// Reads catalogs into `CatalogTable`s.
public enum CatalogReader {
    /// Reads `path` in its detected format (or `format`), mapping columns with `columns`
    /// (nil: `.nvss` for FITS, `.vizierNVSS` with name fallbacks for text tables).
    ///
    /// Throws `.badInput` naming the file (and column or line) when it is missing, not a table,
    /// lacks a column, or has an invalid position or flux.
    public static func read(path: String, format: CatalogFormat? = nil, columns: CatalogColumns? = nil) throws(PipelineError) -> CatalogTable {
        let f: CatalogFormat
        if let format { f = format } else { f = try CatalogFormat.detect(path: path) }
        var table: CatalogTable
        switch f {
        case .fits: table = try readFITS(path: path, columns: columns ?? .nvss)
        case .vizier: table = try readVizier(path: path, columns: columns)
        case .sourceList: table = try SourceList.read(path: path)
        }
        table.source = path
        try table.validate()
        return table
    }

    // MARK: FITS

    static func readFITS(path: String, columns m: CatalogColumns) throws(PipelineError) -> CatalogTable {
        // The shape columns are optional: a catalog of points may lack them.
        var required = [m.ra, m.dec, m.flux]
        if let n = m.name { required.append(n) }
        var shapeNames: [String] = []
        if let a = m.majorAxis, let b = m.minorAxis { shapeNames = [a, b] + (m.positionAngle.map { [$0] } ?? []) }
        let t: FITSTable
        do {
            t = try FITSTable.read(path: path, extensionName: m.extensionName, columns: required + shapeNames)
        } catch {
            shapeNames = []
            t = try FITSTable.read(path: path, extensionName: m.extensionName, columns: required)
        }
        let d2r = Double.pi / 180
        var out = CatalogTable()
        out.ra = try t.doubles(m.ra).map { $0 * d2r }
        out.dec = try t.doubles(m.dec).map { $0 * d2r }
        let peak = try t.floats(m.flux)
        let n = t.rowCount
        let zeros = [Float](repeating: 0, count: n)
        let maj = shapeNames.count >= 2 ? try t.floats(shapeNames[0]) : zeros
        let mnr = shapeNames.count >= 2 ? try t.floats(shapeNames[1]) : zeros
        let pa = shapeNames.count >= 3 ? try t.floats(shapeNames[2]) : zeros
        try fillShapes(into: &out, flux: peak, major: maj, minor: mnr, pa: pa, columns: m)
        if let nm = m.name { out.names = try t.strings(nm) }
        out.referenceFrequency = m.referenceFrequency
        return out
    }

    /// Converts fluxes and axes to Jy and radians, deconvolving fitted sizes when the mapping
    /// says they include a beam.
    static func fillShapes(into out: inout CatalogTable, flux: [Float], major: [Float], minor: [Float], pa: [Float],
                           columns m: CatalogColumns) throws(PipelineError) {
        let n = flux.count
        let fs = Float(m.fluxScale), ax = m.axisScale, d2r = Double.pi / 180
        out.flux = [Float](repeating: 0, count: n)
        out.majorAxis = [Float](repeating: 0, count: n)
        out.minorAxis = [Float](repeating: 0, count: n)
        out.positionAngle = [Float](repeating: 0, count: n)
        out.spectralIndex = [Float](repeating: Float(m.spectralIndex), count: n)
        let beam = m.fittedBeamArcsec.map { $0 / 3600 * d2r }
        for i in 0..<n {
            var a = Double(major[i]) * ax, b = Double(minor[i]) * ax
            if !a.isFinite || !b.isFinite { a = 0; b = 0 }
            if a < b { swap(&a, &b) }
            var s = Double(flux[i]) * Double(fs)
            if let beam {
                // Fitted sizes: unresolved unless larger than the beam; integrated = peak·θM·θm/θb².
                let fa = max(a, beam), fb = max(b, beam)
                s *= fa * fb / (beam * beam)
                // Sizes within 1% of the beam (after deconvolution) are unresolved.
                a = (fa * fa - beam * beam).squareRoot()
                b = (fb * fb - beam * beam).squareRoot()
                if a < 0.01 * beam { a = 0 }
                if b < 0.01 * beam { b = 0 }
            }
            out.flux[i] = Float(s)
            if a > 0 {
                out.majorAxis[i] = Float(a)
                out.minorAxis[i] = Float(b)
                out.positionAngle[i] = Float(Double(pa[i].isFinite ? pa[i] : 0) * d2r)
            }
        }
    }

    // MARK: VizieR text tables

    static let raCandidates = ["RAJ2000", "_RAJ2000", "RA_J2000", "RA(2000)", "RA", "RAdeg", "RA_deg"]
    static let decCandidates = ["DEJ2000", "_DEJ2000", "DECJ2000", "DE_J2000", "DEC(2000)", "DEC", "DE", "DEdeg", "DEC_deg"]
    static let fluxCandidates = ["S1.4", "S1400", "Flux", "S", "Sint", "Stot", "Fint", "Speak", "Fpeak"]

    static func readVizier(path: String, columns: CatalogColumns?) throws(PipelineError) -> CatalogTable {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw PipelineError(.badInput, "the catalog cannot be read as UTF-8 text: \(error.localizedDescription)", context: path)
        }
        var lines: [(Int, Substring)] = []
        for (i, l) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let t = l.trimmingCharacters(in: .whitespaces)
            if t.isEmpty || t.hasPrefix("#") { continue }
            lines.append((i + 1, l.hasSuffix("\r") ? l.dropLast() : l))
        }
        guard let header = lines.first else {
            throw PipelineError(.badInput, "the catalog is empty: no header line of column names (is it a catalog?)", context: path)
        }
        let sep: Character = header.1.contains("\t") ? "\t" : header.1.contains("|") ? "|" : header.1.contains(";") ? ";" : ","
        func fields(_ l: Substring) -> [String] {
            l.split(separator: sep, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let names = fields(header.1)
        guard names.count >= 3 else {
            throw PipelineError(.badInput, "line \(header.0) is not a header of column names separated by tabs, '|' or ';' (is this a catalog?)", context: path)
        }
        func find(_ configured: String?, _ candidates: [String], what: String, required: Bool) throws(PipelineError) -> Int? {
            let options = (configured.map { [$0] } ?? []) + (columns == nil ? candidates : [])
            for o in options {
                if let i = names.firstIndex(where: { $0.caseInsensitiveCompare(o) == .orderedSame }) { return i }
            }
            if required {
                throw PipelineError(.badInput, "no \(what) column (looked for \(options.joined(separator: ", "))); columns present: \(names.joined(separator: ", ")) — map it in the catalog columns", context: path)
            }
            return nil
        }
        let m = columns ?? .vizierNVSS
        let iRA = try find(m.ra, raCandidates, what: "RA", required: true)!
        let iDec = try find(m.dec, decCandidates, what: "Dec", required: true)!
        let iFlux = try find(m.flux, fluxCandidates, what: "flux", required: true)!
        let iMaj = try find(m.majorAxis, ["MajAxis", "Maj"], what: "major axis", required: false)
        let iMin = try find(m.minorAxis, ["MinAxis", "Min"], what: "minor axis", required: false)
        let iPA = try find(m.positionAngle, ["PA"], what: "position angle", required: false)
        let iName = try find(m.name, ["NVSS", "Name", "ID"], what: "name", required: false)

        var out = CatalogTable()
        var flux: [Float] = [], maj: [Float] = [], mnr: [Float] = [], pa: [Float] = []
        var nameList: [String] = []
        for (lineNo, l) in lines.dropFirst() {
            if l.allSatisfy({ $0 == "-" || $0 == sep || $0 == " " }) { continue }
            let f = fields(l)
            // A units line right after the header.
            if out.count == 0, f.count > iFlux, Double(f[iFlux]) == nil, parseAngle(f[iRA], hours: true) == nil { continue }
            guard f.count > max(iRA, iDec, iFlux) else {
                throw PipelineError(.badInput, "line \(lineNo) has \(f.count) fields, fewer than the header's \(names.count)", context: path)
            }
            guard let ra = parseAngle(f[iRA], hours: true), let dec = parseAngle(f[iDec], hours: false) else {
                throw PipelineError(.badInput, "line \(lineNo): cannot read the position '\(f[iRA])', '\(f[iDec])' (sexagesimal h m s / d m s, or degrees)", context: path)
            }
            guard let s = Double(f[iFlux]) else {
                throw PipelineError(.badInput, "line \(lineNo): cannot read the flux '\(f[iFlux])' in column \(names[iFlux])", context: path)
            }
            out.ra.append(ra)
            out.dec.append(dec)
            flux.append(Float(s))
            // Upper limits ("<45.0") and blanks are unresolved.
            func axis(_ i: Int?) -> Float { i.flatMap { $0 < f.count ? Float(f[$0]) : nil } ?? 0 }
            maj.append(axis(iMaj))
            mnr.append(axis(iMin))
            pa.append(axis(iPA))
            if let iName { nameList.append(iName < f.count && !f[iName].isEmpty ? f[iName].replacingOccurrences(of: ",", with: "_") : "") }
        }
        try fillShapes(into: &out, flux: flux, major: maj, minor: mnr, pa: pa, columns: m)
        if iName != nil {
            out.names = nameList.enumerated().map { $1.isEmpty ? positionName(ra: out.ra[$0], dec: out.dec[$0]) : $1 }
        }
        out.referenceFrequency = m.referenceFrequency
        return out
    }
}

/// Reads an angle: sexagesimal (`13 31 08.29`, `13:31:08.29`, `+30 30 33.0`, BBS's
/// `+30.30.33.0`) or decimal degrees (`202.78`, `202.78deg`); `hours` says whether a
/// sexagesimal value is in hours (RA). Returns radians, nil when unreadable.
public func parseAngle(_ text: String, hours: Bool) -> Double? {
    var t = text.trimmingCharacters(in: .whitespaces)
    guard !t.isEmpty else { return nil }
    if t.lowercased().hasSuffix("deg") { t = String(t.dropLast(3)); return Double(t).map { $0 * .pi / 180 } }
    if t.lowercased().hasSuffix("rad") { return Double(t.dropLast(3)) }
    var neg = false
    if t.hasPrefix("-") { neg = true; t.removeFirst() } else if t.hasPrefix("+") { t.removeFirst() }
    var parts: [Substring]
    var sexagesimal = true
    var inHours = hours
    if t.contains(":") || t.contains(" ") {
        parts = t.split(whereSeparator: { $0 == ":" || $0 == " " })
    } else if t.contains("h") || t.contains("d") {
        inHours = t.contains("h")
        parts = t.split(whereSeparator: { "hdms'\"".contains($0) })
    } else {
        let dots = t.split(separator: ".", omittingEmptySubsequences: false)
        if dots.count >= 3 {
            // BBS: d.m.s[.frac] (always degrees, like casacore's MVAngle).
            inHours = false
            parts = [dots[0], dots[1], Substring(dots[2...].joined(separator: "."))]
        } else {
            sexagesimal = false
            parts = [Substring(t)]
        }
    }
    guard !parts.isEmpty, parts.count <= 3 else { return nil }
    let v = parts.map { Double($0) }
    guard v.allSatisfy({ $0 != nil && $0!.isFinite }) else { return nil }
    var x = 0.0
    if sexagesimal {
        for (i, p) in v.enumerated() { x += p! / pow(60, Double(i)) }
        if v.count > 1, (v[1]! >= 60 || (v.count > 2 && v[2]! >= 60)) { return nil }
    } else {
        x = v[0]!
        inHours = false
    }
    if neg { x = -x }
    return x * (inHours ? 15 : 1) * .pi / 180
}
