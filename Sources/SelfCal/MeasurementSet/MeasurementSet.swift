import Foundation
import SelfCalSupport

/// One antenna of the ANTENNA subtable.
public struct Antenna: Sendable, Equatable {
    public var name: String
    /// ITRF position, metres.
    public var position: SIMD3<Double>
    public var dishDiameter: Double
}

/// One row of SPECTRAL_WINDOW.
public struct SpectralWindow: Sendable, Equatable {
    public var id: Int
    /// Channel centre frequencies, Hz.
    public var frequencies: [Double]
    public var channelCount: Int { frequencies.count }
    public var centreFrequency: Double { frequencies.reduce(0, +) / Double(max(1, frequencies.count)) }
}

/// Correlation types (casacore's Stokes enum values).
public enum Correlation: Int32, Sendable, CaseIterable {
    case RR = 5, RL = 6, LR = 7, LL = 8, XX = 9, XY = 10, YX = 11, YY = 12

    public var name: String { "\(self)" }
    /// The receptor indices (feed 1, feed 2) the product is formed from.
    public var receptors: (Int, Int) {
        switch self {
        case .RR, .XX: return (0, 0)
        case .RL, .XY: return (0, 1)
        case .LR, .YX: return (1, 0)
        case .LL, .YY: return (1, 1)
        }
    }
    public var isParallelHand: Bool { receptors.0 == receptors.1 }
}

/// One row of POLARIZATION.
public struct Polarization: Sendable, Equatable {
    public var correlations: [Correlation]
}

/// One row of DATA_DESCRIPTION.
public struct DataDescription: Sendable, Equatable {
    public var spectralWindow: Int
    public var polarization: Int
}

/// One row of FIELD: the phase centre and its direction frame.
public struct Field: Sendable, Equatable {
    public var name: String
    /// Phase centre, radians, in `frame`.
    public var ra: Double
    public var dec: Double
    /// "J2000", "B1950", ...
    public var frame: String
}

/// A contiguous range of main-table rows sharing one data description, read or written as one unit.
public struct RowChunk: Sendable, Equatable {
    public var start: Int
    public var count: Int
    public var dataDescription: Int
}

/// The visibilities and metadata of one `RowChunk`. Array data are in casacore order:
/// per row, `npol` correlations vary fastest, then channels.
public struct VisibilityChunk: Sendable {
    public var chunk: RowChunk
    public var channelCount: Int
    public var correlationCount: Int
    public var time: [Double] = []
    public var antenna1: [Int32] = []
    public var antenna2: [Int32] = []
    public var flagRow: [Bool] = []
    /// 3 per row, metres.
    public var uvw: [Double] = []
    /// Interleaved (re, im), `2 * rows * nchan * npol` floats.
    public var data: [Float] = []
    /// One byte per visibility (0 or 1).
    public var flags: [UInt8] = []
    /// Per visibility from WEIGHT_SPECTRUM (`weightsPerChannel`), else per row and correlation
    /// from WEIGHT (`npol` per row; the same for every channel): not broadcast, which would write
    /// and read back 4 bytes per visibility for nothing.
    public var weights: [Float] = []
    public var weightsPerChannel = true

    public var rowCount: Int { chunk.count }
    public var cellSize: Int { channelCount * correlationCount }
}

/// The per-row metadata of the main table, read once per MS and shared by every pass.
///
/// In a Measurement Set these scalar columns usually share one StandardStMan whose buckets hold
/// all of them for a few dozen rows (2,692 bytes for 32 rows in a CASA-default MS), and its cache
/// holds two buckets: reading TIME, ANTENNA1, ANTENNA2, FLAG_ROW, ... one after the other for a
/// chunk re-reads every bucket once per column, and a pass that does this per chunk reads the
/// whole file (151 MB for a DSA-110 MS) about ten times. `RowIndex.read` reads them in blocks of
/// rows with a cache that holds a block, so each bucket is read from the file once.
public struct RowIndex: Sendable {
    public var time: [Double] = []
    public var antenna1: [Int32] = []
    public var antenna2: [Int32] = []
    /// FLAG_ROW (all false when the column is absent).
    public var flagRow: [Bool] = []
    public var dataDescription: [Int32] = []
    /// FIELD_ID (all 0 when absent).
    public var field: [Int32] = []
    /// SCAN_NUMBER (all 0 when absent).
    public var scan: [Int32] = []
    /// INTERVAL of the first row (0 when absent or the MS is empty).
    public var firstInterval = 0.0

    public var count: Int { time.count }

    /// Rows per block, and the cache (in buckets) that holds a block's buckets at 16 or more rows
    /// per bucket.
    static let blockRows = 16_384
    static let cacheBuckets = 1_024

    static func read(_ table: CasaTable) throws -> RowIndex {
        let n = table.rowCount
        var idx = RowIndex()
        let optional = ["FLAG_ROW", "FIELD_ID", "SCAN_NUMBER"].filter { table.hasColumn($0) }
        let columns = ["TIME", "ANTENNA1", "ANTENNA2", "DATA_DESC_ID"] + optional
        // Enlarge the StandardStMan cache(s) for the read; put back what was there after.
        var restore: [(String, Int)] = []
        // Only a speed-up: a table whose storage managers cannot be reached this way (a
        // reference table, say) is read with its caches as they are.
        for c in columns {
            if let previous = try? table.setStandardStManCache(c, buckets: cacheBuckets), previous != cacheBuckets {
                restore.append((c, previous))
            }
        }
        defer { for (c, previous) in restore.reversed() { _ = try? table.setStandardStManCache(c, buckets: previous) } }
        idx.time.reserveCapacity(n)
        idx.antenna1.reserveCapacity(n)
        idx.antenna2.reserveCapacity(n)
        idx.dataDescription.reserveCapacity(n)
        var start = 0
        while start < n {
            let m = min(blockRows, n - start)
            idx.time += try table.doubles("TIME", start: start, count: m)
            idx.antenna1 += try table.ints("ANTENNA1", start: start, count: m)
            idx.antenna2 += try table.ints("ANTENNA2", start: start, count: m)
            idx.dataDescription += try table.ints("DATA_DESC_ID", start: start, count: m)
            if optional.contains("FLAG_ROW") { idx.flagRow += try table.bools("FLAG_ROW", start: start, count: m) }
            if optional.contains("FIELD_ID") { idx.field += try table.ints("FIELD_ID", start: start, count: m) }
            if optional.contains("SCAN_NUMBER") { idx.scan += try table.ints("SCAN_NUMBER", start: start, count: m) }
            start += m
        }
        if idx.flagRow.isEmpty { idx.flagRow = Array(repeating: false, count: n) }
        if idx.field.isEmpty { idx.field = Array(repeating: 0, count: n) }
        if idx.scan.isEmpty { idx.scan = Array(repeating: 0, count: n) }
        if n > 0, table.hasColumn("INTERVAL") { idx.firstInterval = try table.doubles("INTERVAL", start: 0, count: 1)[0] }
        return idx
    }
}

/// A Measurement Set opened through casacore, with its subtables read into Swift values.
///
/// The main table's data columns are accessed in row chunks (`rowChunks`), never as whole columns
/// (only the per-row scalars of `rowIndex()` are held whole, about 30 bytes a row), so a 2 GB MS
/// never has to fit in memory. Errors name the MS, subtable and column.
public final class MeasurementSet: @unchecked Sendable {
    public enum Mode: Sendable { case readOnly, readWrite }

    public let path: String
    public let table: CasaTable
    public let antennas: [Antenna]
    public let spectralWindows: [SpectralWindow]
    public let polarizations: [Polarization]
    public let dataDescriptions: [DataDescription]
    public let fields: [Field]

    private let indexLock = NSLock()
    private var cachedIndex: RowIndex?

    public init(path: String, mode: Mode = .readOnly) throws {
        self.path = path
        if mode == .readWrite, FileManager.default.fileExists(atPath: path + "/table.dat"), !Self.isWritable(path) {
            throw PipelineError(.badInput, "the MS is read-only (make it writable with `chmod -R u+w`, or work on a copy)", context: path)
        }
        table = try CasaTable(path: path, writable: mode == .readWrite)
        for col in ["ANTENNA1", "ANTENNA2", "TIME", "DATA_DESC_ID", "UVW"] {
            try table.requireColumn(col, hint: "is this a Measurement Set?")
        }

        let ant = try table.subtable("ANTENNA")
        let names = try ant.strings("NAME")
        let pos = try ant.readDoubleArrays("POSITION", start: 0, count: ant.rowCount, cellSize: 3)
        let dish = ant.hasColumn("DISH_DIAMETER") ? try ant.doubles("DISH_DIAMETER") : Array(repeating: 0, count: ant.rowCount)
        antennas = (0..<ant.rowCount).map {
            Antenna(name: names[$0], position: SIMD3(pos[3 * $0], pos[3 * $0 + 1], pos[3 * $0 + 2]), dishDiameter: dish[$0])
        }

        spectralWindows = try Self.readSpectralWindows(table)

        let pol = try table.subtable("POLARIZATION")
        let ncorr = try pol.ints("NUM_CORR")
        polarizations = try (0..<pol.rowCount).map { row in
            let types = try pol.intCell("CORR_TYPE", row: row, maxElements: Int(ncorr[row]))
            return Polarization(correlations: try types.map { t in
                guard let c = Correlation(rawValue: t) else {
                    throw PipelineError(.badInput, "unsupported correlation type \(t) in CORR_TYPE", context: path + "/POLARIZATION")
                }
                return c
            })
        }

        let dd = try table.subtable("DATA_DESCRIPTION")
        let ddSpw = try dd.ints("SPECTRAL_WINDOW_ID"), ddPol = try dd.ints("POLARIZATION_ID")
        dataDescriptions = (0..<dd.rowCount).map { DataDescription(spectralWindow: Int(ddSpw[$0]), polarization: Int(ddPol[$0])) }

        let fld = try table.subtable("FIELD")
        let fnames = try fld.strings("NAME")
        let frame = (try? fld.columnKeyword("PHASE_DIR", "MEASINFO.Ref")) ?? "J2000"
        fields = try (0..<fld.rowCount).map { row in
            let d = try fld.doubleCell("PHASE_DIR", row: row, maxElements: 2)
            return Field(name: fnames[row], ra: d[0], dec: d[1], frame: frame)
        }
        guard !fields.isEmpty, !dataDescriptions.isEmpty, !antennas.isEmpty else {
            throw PipelineError(.badInput, "the FIELD, DATA_DESCRIPTION or ANTENNA subtable is empty", context: path)
        }
        // Let other processes (WSClean) at the table until we next touch it.
        try table.release()
    }

    public var rowCount: Int { table.rowCount }
    public var isWritable: Bool { table.isWritable }
    public var columnNames: [String] { table.columnNames }
    public func hasColumn(_ name: String) -> Bool { table.hasColumn(name) }

    /// The main table's per-row metadata, read on first use and kept (re-read if rows were added).
    public func rowIndex() throws -> RowIndex {
        indexLock.lock()
        defer { indexLock.unlock() }
        if let idx = cachedIndex, idx.count == rowCount { return idx }
        let idx = try RowIndex.read(table)
        cachedIndex = idx
        return idx
    }

    /// The SPW and polarisation setup of a data description.
    public func setup(of ddid: Int) throws -> (spw: SpectralWindow, pol: Polarization) {
        guard ddid >= 0, ddid < dataDescriptions.count else {
            throw PipelineError(.badInput, "DATA_DESC_ID \(ddid) has no DATA_DESCRIPTION row", context: path)
        }
        let d = dataDescriptions[ddid]
        return (spectralWindows[d.spectralWindow], polarizations[d.polarization])
    }

    /// Drops and re-creates MODEL_DATA and CORRECTED_DATA: after a process was killed while
    /// writing them they may be inconsistent on disk; DATA is never touched.
    public func rebuildDerivedColumns() throws {
        for c in ["MODEL_DATA", "CORRECTED_DATA"] where table.hasColumn(c) { try table.removeColumn(c) }
        try ensureDataColumn("MODEL_DATA")
        try ensureDataColumn("CORRECTED_DATA")
        try table.release()
    }

    /// Adds MODEL_DATA / CORRECTED_DATA if absent (tiled, shaped like DATA).
    public func ensureDataColumn(_ name: String) throws {
        if !table.hasColumn(name) { try table.addDataColumn(name, like: "DATA") }
    }

    /// Splits the main table into contiguous runs of rows with one DATA_DESC_ID, each about
    /// `targetRows` long and cut at a change of TIME where possible.
    public func rowChunks(targetRows: Int = 50_000) throws -> [RowChunk] {
        let idx = try rowIndex()
        let n = idx.count
        guard n > 0 else { return [] }
        var chunks: [RowChunk] = []
        var current = RowChunk(start: 0, count: 1, dataDescription: Int(idx.dataDescription[0]))
        for i in 1..<max(1, n) {
            let d = Int(idx.dataDescription[i])
            let cut = d != current.dataDescription || (current.count >= targetRows && idx.time[i] != idx.time[i - 1])
                || current.count >= 4 * targetRows
            if cut {
                chunks.append(current)
                current = RowChunk(start: i, count: 1, dataDescription: d)
            } else {
                current.count += 1
            }
        }
        chunks.append(current)
        return chunks
    }

    /// What `read` fetches besides the metadata.
    public struct Columns: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let flags = Columns(rawValue: 1)
        public static let weights = Columns(rawValue: 2)
        public static let uvw = Columns(rawValue: 4)
    }

    /// Reads one chunk: TIME, ANTENNA1/2, FLAG_ROW always; `dataColumn` (nil for none) and `extra`.
    public func read(_ chunk: RowChunk, dataColumn: String?, extra: Columns = []) throws -> VisibilityChunk {
        var v = VisibilityChunk(chunk: chunk, channelCount: 0, correlationCount: 0)
        try read(chunk, dataColumn: dataColumn, extra: extra, into: &v)
        return v
    }

    /// Like `read(_:dataColumn:extra:)`, into `v`, reusing the storage of its arrays: a pass over
    /// equal-sized chunks allocates only for the first (fresh multi-megabyte arrays per chunk cost
    /// a page fault per 4 KiB). Arrays of columns not asked for are left as they were.
    public func read(_ chunk: RowChunk, dataColumn: String?, extra: Columns = [], into v: inout VisibilityChunk) throws {
        let (spw, pol) = try setup(of: chunk.dataDescription)
        v.chunk = chunk
        v.channelCount = spw.channelCount
        v.correlationCount = pol.correlations.count
        let s = chunk.start, n = chunk.count, cs = v.cellSize
        let idx = try rowIndex()
        guard s >= 0, s + n <= idx.count else {
            throw PipelineError(.badInput, "rows \(s)..<\(s + n) are outside the table's \(idx.count) rows", context: path)
        }
        Self.assign(&v.time, idx.time[s..<(s + n)])
        Self.assign(&v.antenna1, idx.antenna1[s..<(s + n)])
        Self.assign(&v.antenna2, idx.antenna2[s..<(s + n)])
        Self.assign(&v.flagRow, idx.flagRow[s..<(s + n)])
        if let col = dataColumn {
            try table.requireColumn(col, hint: col == "MODEL_DATA" ? "seed a model first, e.g. with `selfcal predict`" : "")
            Self.resize(&v.data, to: 2 * n * cs, fill: 0)
            try v.data.withUnsafeMutableBufferPointer { try table.readComplex(col, start: s, count: n, cellSize: cs, into: $0) }
        }
        if extra.contains(.flags) {
            if table.hasColumn("FLAG") {
                Self.resize(&v.flags, to: n * cs, fill: 0)
                try v.flags.withUnsafeMutableBufferPointer { try table.readFlags("FLAG", start: s, count: n, cellSize: cs, into: $0) }
            } else {
                v.flags = [UInt8](repeating: 0, count: n * cs)
            }
            let flagRow = v.flagRow
            v.flags.withUnsafeMutableBufferPointer { f in
                for r in 0..<n where flagRow[r] {
                    (f.baseAddress! + r * cs).update(repeating: 1, count: cs)
                }
            }
        }
        if extra.contains(.weights) {
            let np = v.correlationCount
            if table.hasColumn("WEIGHT_SPECTRUM"), (try? table.cellShape("WEIGHT_SPECTRUM", row: s))?.reduce(1, *) == cs {
                v.weightsPerChannel = true
                Self.resize(&v.weights, to: n * cs, fill: 1)
                try v.weights.withUnsafeMutableBufferPointer { try table.readFloats("WEIGHT_SPECTRUM", start: s, count: n, cellSize: cs, into: $0) }
            } else if table.hasColumn("WEIGHT") {
                v.weightsPerChannel = false
                Self.resize(&v.weights, to: n * np, fill: 1)
                try v.weights.withUnsafeMutableBufferPointer { try table.readFloats("WEIGHT", start: s, count: n, cellSize: np, into: $0) }
            } else {
                v.weightsPerChannel = false
                Self.resize(&v.weights, to: n * np, fill: 1)
                v.weights.withUnsafeMutableBufferPointer { $0.update(repeating: 1) }
            }
        }
        if extra.contains(.uvw) {
            v.uvw = try table.readDoubleArrays("UVW", start: s, count: n, cellSize: 3)
        }
    }

    /// Replaces the contents of `a` with `values`, keeping its storage.
    static func assign<T>(_ a: inout [T], _ values: ArraySlice<T>) {
        a.removeAll(keepingCapacity: true)
        a.append(contentsOf: values)
    }

    /// Sets `a.count` to `n`, keeping its storage where it is large enough; new elements are `fill`.
    static func resize<T>(_ a: inout [T], to n: Int, fill: T) {
        if a.count > n {
            a.removeLast(a.count - n)
        } else if a.count < n {
            a.append(contentsOf: repeatElement(fill, count: n - a.count))
        }
    }

    /// Reads a complex data column for a chunk into a caller's buffer (interleaved re, im).
    public func readData(_ column: String, chunk: RowChunk, cellSize: Int, into buffer: inout [Float]) throws {
        if buffer.count < 2 * chunk.count * cellSize { buffer = [Float](repeating: 0, count: 2 * chunk.count * cellSize) }
        try buffer.withUnsafeMutableBufferPointer {
            try table.readComplex(column, start: chunk.start, count: chunk.count, cellSize: cellSize, into: $0)
        }
    }

    /// Writes a complex data column for a chunk (interleaved re, im). The MS must be writable.
    public func writeData(_ column: String, chunk: RowChunk, cellSize: Int, from data: [Float]) throws {
        guard isWritable else {
            throw PipelineError(.badInput, "cannot write \(column): the MS is opened read-only", context: path)
        }
        try data.withUnsafeBufferPointer {
            try table.writeComplex(column, start: chunk.start, count: chunk.count, cellSize: cellSize, from: $0)
        }
    }

    public func writeFlags(chunk: RowChunk, cellSize: Int, _ flags: [UInt8]) throws {
        try flags.withUnsafeBufferPointer {
            try table.writeFlags("FLAG", start: chunk.start, count: chunk.count, cellSize: cellSize, from: $0)
        }
    }

    /// Fraction of visibilities flagged (FLAG or FLAG_ROW), over the whole MS, excluding autocorrelations.
    public func flaggedFraction() throws -> Double {
        var flagged = 0, total = 0
        var v = VisibilityChunk(chunk: RowChunk(start: 0, count: 0, dataDescription: 0), channelCount: 0, correlationCount: 0)
        for c in try rowChunks() {
            try read(c, dataColumn: nil, extra: .flags, into: &v)
            let cs = v.cellSize
            for r in 0..<v.rowCount where v.antenna1[r] != v.antenna2[r] {
                total += cs
                for k in 0..<cs where v.flags[r * cs + k] != 0 { flagged += 1 }
            }
        }
        return total == 0 ? 1 : Double(flagged) / Double(total)
    }
}

extension MeasurementSet {
    /// Writable by permissions, judged from the mode bits too (root passes every access() check,
    /// but a table someone made read-only must stay untouched).
    static func isWritable(_ path: String) -> Bool {
        for p in [path, path + "/table.dat"] {
            guard FileManager.default.isWritableFile(atPath: p),
                  let attrs = try? FileManager.default.attributesOfItem(atPath: p),
                  let perms = attrs[.posixPermissions] as? Int, perms & 0o222 != 0 else { return false }
        }
        return true
    }

    static func readSpectralWindows(_ table: CasaTable) throws -> [SpectralWindow] {
        let spw = try table.subtable("SPECTRAL_WINDOW")
        let nchan = try spw.ints("NUM_CHAN")
        return try (0..<spw.rowCount).map { row in
            SpectralWindow(id: row, frequencies: try spw.doubleCell("CHAN_FREQ", row: row, maxElements: Int(nchan[row])))
        }
    }
}
