import Foundation
import SelfCalSupport

/// A catalog sorted by declination, for cone searches that touch only the declination band
/// of the cone. Immutable once built; shared by every search in the process through
/// `CatalogIndex.load`, which keeps the last indexes in memory and a binary copy beside a FITS
/// catalog (`<catalog>.selfcal-index`), so that a 1.8-million-row NVSS is read and sorted
/// once, not per search or per process.
public final class CatalogIndex: Sendable {
    /// The catalog rows, sorted by `dec`.
    public let table: CatalogTable

    public init(table: CatalogTable) {
        let order = table.dec.indices.sorted { table.dec[$0] < table.dec[$1] }
        var t = CatalogTable()
        t.ra = order.map { table.ra[$0] }
        t.dec = order.map { table.dec[$0] }
        t.flux = order.map { table.flux[$0] }
        t.majorAxis = order.map { table.majorAxis[$0] }
        t.minorAxis = order.map { table.minorAxis[$0] }
        t.positionAngle = order.map { table.positionAngle[$0] }
        t.spectralIndex = order.map { table.spectralIndex[$0] }
        t.names = table.names.map { n in order.map { n[$0] } }
        t.referenceFrequency = table.referenceFrequency
        t.source = table.source
        self.table = t
    }

    private init(sorted: CatalogTable) { table = sorted }

    public var count: Int { table.count }

    /// Components within `radius` (radians) of (ra, dec), J2000 radians, whose catalog flux is
    /// at least `minFlux` Jy; in catalog order of declination (callers rank them).
    public func cone(ra: Double, dec: Double, radius: Double, minFlux: Double = 0) -> [Int] {
        let lo = lowerBound(dec - radius), hi = lowerBound(dec + radius + 1e-15)
        var out: [Int] = []
        let t = table
        // Cheap RA prefilter: away from the poles, |ΔRA| ≤ asin(sin r / cos δ).
        let cosMax = cos(min(.pi / 2, abs(dec) + radius))
        let raHalf = cosMax > 1e-9 && sin(radius) < cosMax ? asin(sin(radius) / cosMax) : .pi
        let minF = Float(minFlux)
        t.ra.withUnsafeBufferPointer { ras in
            t.dec.withUnsafeBufferPointer { decs in
                t.flux.withUnsafeBufferPointer { fl in
                    for i in lo..<hi where fl[i] >= minF {
                        var dra = abs(ras[i] - ra).truncatingRemainder(dividingBy: 2 * .pi)
                        if dra > .pi { dra = 2 * .pi - dra }
                        if dra > raHalf { continue }
                        if angularSeparation(ra1: ra, dec1: dec, ra2: ras[i], dec2: decs[i]) <= radius { out.append(i) }
                    }
                }
            }
        }
        return out
    }

    /// First index with dec ≥ x.
    private func lowerBound(_ x: Double) -> Int {
        var lo = 0, hi = table.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if table.dec[mid] < x { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    // MARK: loading and caching

    private static let memory = IndexMemory()

    /// The index of a catalog file: from memory when this process read the same file (same
    /// size, modification time and column mapping) before, else from its binary cache beside
    /// it when that is current, else read, validated, sorted, and cached both ways (the cache
    /// file is skipped silently when the directory is read-only).
    ///
    /// Throws `.badInput` when the catalog is missing, not a catalog, lacks a column, or has an
    /// invalid position or flux.
    public static func load(path: String, format: CatalogFormat? = nil, columns: CatalogColumns? = nil,
                            useCacheFile: Bool = true) throws(PipelineError) -> CatalogIndex {
        let fmt: CatalogFormat
        if let format { fmt = format } else { fmt = try CatalogFormat.detect(path: path) }
        let key = cacheKey(path: path, format: fmt, columns: columns)
        if let hit = memory.get(key) { return hit }
        let cachePath = path + ".selfcal-index"
        // The cache file holds no names: used only when names come from positions.
        let cacheable = useCacheFile && fmt == .fits && columns?.name == nil
        if cacheable, let cached = readCacheFile(cachePath, key: key) {
            memory.put(key, cached)
            return cached
        }
        let table = try CatalogReader.read(path: path, format: fmt, columns: columns)
        let index = CatalogIndex(table: table)
        if cacheable { index.writeCacheFile(cachePath, key: key) }
        memory.put(key, index)
        return index
    }

    /// Identifies a catalog file's content (path, size, modification time) and its mapping.
    static func cacheKey(path: String, format: CatalogFormat, columns: CatalogColumns?) -> String {
        let stamp = fileStamp(path)
        return "\(path)|\(format.rawValue)|\(stamp.size)|\(stamp.mtime)|\((columns ?? (format == .fits ? .nvss : .vizierNVSS)).cacheKey)"
    }

    static func fileStamp(_ path: String) -> (size: UInt64, mtime: Double) {
        let a = try? FileManager.default.attributesOfItem(atPath: path)
        return ((a?[.size] as? NSNumber)?.uint64Value ?? 0, (a?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)
    }

    private static let magic = Array("SELFCAL-CATALOG-INDEX-1\n".utf8)

    /// Layout: magic, UInt32 key length, key bytes, Int64 count, Double reference frequency,
    /// then the columns (dec, ra as Double; flux, axes, angle, index as Float), native-endian.
    private func writeCacheFile(_ path: String, key: String) {
        var data = Data(Self.magic)
        let k = Array(key.utf8)
        withUnsafeBytes(of: UInt32(k.count)) { data.append(contentsOf: $0) }
        data.append(contentsOf: k)
        withUnsafeBytes(of: Int64(count)) { data.append(contentsOf: $0) }
        withUnsafeBytes(of: table.referenceFrequency) { data.append(contentsOf: $0) }
        table.dec.withUnsafeBytes { data.append(contentsOf: $0) }
        table.ra.withUnsafeBytes { data.append(contentsOf: $0) }
        for col in [table.flux, table.majorAxis, table.minorAxis, table.positionAngle, table.spectralIndex] {
            col.withUnsafeBytes { data.append(contentsOf: $0) }
        }
        let tmp = path + ".tmp-\(getpid())"
        if FileManager.default.createFile(atPath: tmp, contents: data) {
            if rename(tmp, path) != 0 { unlink(tmp) }
        }
    }

    static func readCacheFile(_ path: String, key: String) -> CatalogIndex? {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else { return nil }
        return data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> CatalogIndex? in
            var off = magic.count
            guard raw.count > off + 4, Array(raw[0..<off]) == magic else { return nil }
            let klen = Int(raw.loadUnaligned(fromByteOffset: off, as: UInt32.self)); off += 4
            guard raw.count >= off + klen + 16, String(decoding: raw[off..<(off + klen)], as: UTF8.self) == key else { return nil }
            off += klen
            let n = Int(raw.loadUnaligned(fromByteOffset: off, as: Int64.self)); off += 8
            let ref = raw.loadUnaligned(fromByteOffset: off, as: Double.self); off += 8
            guard n >= 0, raw.count == off + n * (16 + 5 * 4) else { return nil }
            func doubles() -> [Double] {
                let a = [Double](unsafeUninitializedCapacity: n) { buf, c in
                    UnsafeMutableRawBufferPointer(buf).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[off..<(off + 8 * n)]))
                    c = n
                }
                off += 8 * n
                return a
            }
            func floats() -> [Float] {
                let a = [Float](unsafeUninitializedCapacity: n) { buf, c in
                    UnsafeMutableRawBufferPointer(buf).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[off..<(off + 4 * n)]))
                    c = n
                }
                off += 4 * n
                return a
            }
            var t = CatalogTable()
            t.dec = doubles()
            t.ra = doubles()
            t.flux = floats()
            t.majorAxis = floats()
            t.minorAxis = floats()
            t.positionAngle = floats()
            t.spectralIndex = floats()
            t.referenceFrequency = ref
            t.source = String(path.dropLast(".selfcal-index".count))
            return CatalogIndex(sorted: t)
        }
    }
}

/// The last few catalog indexes this process built, by file identity and column mapping.
private final class IndexMemory: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [(String, CatalogIndex)] = []

    func get(_ key: String) -> CatalogIndex? { lock.withLock { entries.first { $0.0 == key }?.1 } }

    func put(_ key: String, _ index: CatalogIndex) {
        lock.withLock {
            entries.removeAll { $0.0 == key }
            entries.append((key, index))
            if entries.count > 4 { entries.removeFirst() }
        }
    }
}

/// What to take from a catalog around a phase centre.
public struct ConeSelection: Sendable, Equatable {
    /// Cone radius, radians; nil → the primary beam's first null at the lowest observed
    /// frequency (needs a beam).
    public var radius: Double?
    /// `nvss_min_mjy`, in Jy: components below it (catalog flux) are left out.
    public var minFlux: Double
    /// At most this many components, the brightest first.
    public var maxComponents: Int

    public init(radius: Double? = nil, minFlux: Double = 0, maxComponents: Int = 1000) {
        self.radius = radius
        self.minFlux = minFlux
        self.maxComponents = maxComponents
    }

    /// Throws `.badConfig` naming the option for a radius ≤ 0 or > 180°, a negative or NaN flux
    /// limit, or a cap below 1.
    public func validate() throws(PipelineError) {
        if let r = radius, !(r > 0 && r <= .pi) {
            throw PipelineError(.badConfig, "the search radius must be > 0 and ≤ 180° (got \(r * 180 / .pi)°)", context: "radius")
        }
        if !(minFlux >= 0) { throw PipelineError(.badConfig, "the flux limit must be ≥ 0 (got \(minFlux * 1e3) mJy)", context: "nvss_min_mjy") }
        if maxComponents < 1 { throw PipelineError(.badConfig, "the component cap must be ≥ 1 (got \(maxComponents))", context: "max_components") }
    }

    /// The radius in force: `radius`, or the beam's first null at `lowestFrequency`.
    /// Throws `.badConfig` when neither is known.
    public func effectiveRadius(beam: AiryBeam?, lowestFrequency: Double) throws(PipelineError) -> Double {
        if let radius { return radius }
        guard let beam, lowestFrequency > 0 else {
            throw PipelineError(.badConfig, "no search radius given and the MS's ANTENNA table has no DISH_DIAMETER to derive the primary beam from: give a radius", context: "radius")
        }
        return beam.firstNull(frequency: lowestFrequency)
    }
}

extension CatalogIndex {
    /// Selects components around (ra, dec) J2000 radians: within `radius`, catalog flux ≥
    /// `minFlux`, ranked by the flux the telescope sees (beam-attenuated at `frequency` when
    /// a beam is given, else catalog flux), brightest first, at most `maxComponents`.
    public func select(ra: Double, dec: Double, radius: Double, minFlux: Double, maxComponents: Int,
                       beam: AiryBeam? = nil, frequency: Double = 1.4e9) -> [SkyComponent] {
        let hits = cone(ra: ra, dec: dec, radius: radius, minFlux: minFlux)
        let t = table
        let ranked: [(Int, Double)] = hits.map { i in
            let a = beam.map { $0.gain(offset: angularSeparation(ra1: ra, dec1: dec, ra2: t.ra[i], dec2: t.dec[i]), frequency: frequency) } ?? 1
            return (i, Double(t.flux[i]) * a)
        }
        let top = ranked.count > maxComponents
            ? Array(ranked.sorted { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }.prefix(maxComponents))
            : ranked.sorted { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
        return top.map { t.component($0.0) }
    }
}
