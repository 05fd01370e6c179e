import CCasacore
import Foundation
import SelfCalSupport

/// A casacore table opened through the `ccasa_*` shim. Every foreign call in selfcal that
/// touches casacore goes through this file; each turns the shim's status into a `PipelineError`
/// naming the table and column.
///
/// Not thread-safe: use one `CasaTable` from one thread at a time.
public final class CasaTable: @unchecked Sendable {
    let handle: OpaquePointer
    public let path: String
    public let isWritable: Bool

    /// Opens a table; `writable` opens it for update with casacore's automatic locking.
    /// Fails with `.badInput` when the path is missing, not a table, or not writable.
    public init(path: String, writable: Bool = false) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw PipelineError(.badInput, "no such file or directory (check the MS path)", context: path)
        }
        guard isDir.boolValue, FileManager.default.fileExists(atPath: path + "/table.dat") else {
            throw PipelineError(.badInput, "not a casacore table (a Measurement Set is a directory holding table.dat)", context: path)
        }
        var err = ErrorBuffer()
        guard let h = err.call({ ccasa_open(path, writable ? 1 : 0, $0, $1) }) else {
            throw PipelineError(.badInput, err.message, context: nil)
        }
        handle = h
        self.path = path
        self.isWritable = writable
    }

    init(handle: OpaquePointer, path: String, writable: Bool) {
        self.handle = handle
        self.path = path
        self.isWritable = writable
    }

    deinit {
        var err = ErrorBuffer()
        _ = err.call { ccasa_close(handle, $0, $1) }
    }

    /// Opens a subtable (ANTENNA, SPECTRAL_WINDOW, ...) named by a table keyword.
    public func subtable(_ name: String, writable: Bool = false) throws -> CasaTable {
        var err = ErrorBuffer()
        guard let h = err.call({ ccasa_open_subtable(handle, name, writable ? 1 : 0, $0, $1) }) else {
            throw PipelineError(.badInput, err.message)
        }
        return CasaTable(handle: h, path: path + "/" + name, writable: writable)
    }

    public var rowCount: Int { Int(ccasa_nrows(handle)) }

    public var columnNames: [String] {
        let n = Int(ccasa_column_names(handle, nil, 0))
        var buf = [CChar](repeating: 0, count: n + 1)
        _ = ccasa_column_names(handle, &buf, buf.count)
        let s = String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return s.isEmpty ? [] : s.split(separator: "\n").map(String.init)
    }

    public func hasColumn(_ name: String) -> Bool { ccasa_has_column(handle, name) != 0 }

    /// Throws `.badInput` naming the column and the table when it is absent.
    public func requireColumn(_ name: String, hint: String = "") throws {
        guard hasColumn(name) else {
            throw PipelineError(.badInput, "column \(name) is missing\(hint.isEmpty ? "" : " (\(hint))")", context: path)
        }
    }

    /// The shape of one array cell ([] for a scalar column), in casacore order.
    public func cellShape(_ column: String, row: Int = 0) throws -> [Int] {
        var ndim: Int32 = 0
        var shape = [Int64](repeating: 0, count: 8)
        try check { ccasa_cell_shape(handle, column, Int64(row), &ndim, &shape, $0, $1) }
        return shape.prefix(Int(ndim)).map(Int.init)
    }

    public func columnKeyword(_ column: String, _ keyPath: String) throws -> String {
        var buf = [CChar](repeating: 0, count: 256)
        try check { ccasa_column_keyword_string(handle, column, keyPath, &buf, buf.count, $0, $1) }
        return stringFromC(buf)
    }

    public func addRows(_ n: Int) throws { try check { ccasa_add_rows(handle, Int64(n), $0, $1) } }

    public func flush() throws { try check { ccasa_flush(handle, $0, $1) } }

    /// Flushes and releases the table's locks so another process (WSClean, CASA) can open it;
    /// the next access through this handle locks again.
    public func release() throws { try check { ccasa_release(handle, $0, $1) } }

    /// Adds MODEL_DATA or CORRECTED_DATA like CASA (tiled, shaped like `like`); no-op if present.
    public func addDataColumn(_ name: String, like: String = "DATA") throws {
        guard isWritable else {
            throw PipelineError(.badInput, "cannot add column \(name): the MS is opened read-only", context: path)
        }
        try check { ccasa_add_data_column(handle, name, like, $0, $1) }
    }

    /// Removes a derived column (never DATA); no-op if absent.
    public func removeColumn(_ name: String) throws {
        guard isWritable else {
            throw PipelineError(.badInput, "cannot remove column \(name): the MS is opened read-only", context: path)
        }
        try check { ccasa_remove_column(handle, name, $0, $1) }
    }

    // MARK: Scalar columns

    public func ints(_ column: String, start: Int = 0, count: Int? = nil) throws -> [Int32] {
        let n = count ?? (rowCount - start)
        var out = [Int32](repeating: 0, count: n)
        if n > 0 { try check { ccasa_get_int_range(handle, column, Int64(start), Int64(n), &out, $0, $1) } }
        return out
    }

    public func putInts(_ column: String, start: Int, _ values: [Int32]) throws {
        try check { ccasa_put_int_range(handle, column, Int64(start), Int64(values.count), values, $0, $1) }
    }

    public func doubles(_ column: String, start: Int = 0, count: Int? = nil) throws -> [Double] {
        let n = count ?? (rowCount - start)
        var out = [Double](repeating: 0, count: n)
        if n > 0 { try check { ccasa_get_double_range(handle, column, Int64(start), Int64(n), &out, $0, $1) } }
        return out
    }

    public func putDoubles(_ column: String, start: Int, _ values: [Double]) throws {
        try check { ccasa_put_double_range(handle, column, Int64(start), Int64(values.count), values, $0, $1) }
    }

    public func bools(_ column: String, start: Int = 0, count: Int? = nil) throws -> [Bool] {
        let n = count ?? (rowCount - start)
        var out = [UInt8](repeating: 0, count: n)
        if n > 0 { try check { ccasa_get_bool_range(handle, column, Int64(start), Int64(n), &out, $0, $1) } }
        return out.map { $0 != 0 }
    }

    public func putBools(_ column: String, start: Int, _ values: [Bool]) throws {
        let bytes = values.map { UInt8($0 ? 1 : 0) }
        try check { ccasa_put_bool_range(handle, column, Int64(start), Int64(bytes.count), bytes, $0, $1) }
    }

    /// Sets the bucket cache of the StandardStMan holding `column` to `buckets`; returns the
    /// previous size, or nil when the column lives in another storage manager (left alone).
    @discardableResult
    public func setStandardStManCache(_ column: String, buckets: Int) throws -> Int? {
        var previous: Int64 = -1
        try check { ccasa_set_ssm_cache(handle, column, Int64(buckets), &previous, $0, $1) }
        return previous >= 0 ? Int(previous) : nil
    }

    public func string(_ column: String, row: Int) throws -> String {
        var buf = [CChar](repeating: 0, count: 1024)
        try check { ccasa_get_string_cell(handle, column, Int64(row), &buf, buf.count, $0, $1) }
        return stringFromC(buf)
    }

    public func strings(_ column: String) throws -> [String] {
        try (0..<rowCount).map { try string(column, row: $0) }
    }

    // MARK: Array columns (row ranges; every cell in the range must hold `cellSize` elements)

    /// Reads complex cells of rows `start..<start+count` into `out` (interleaved re, im).
    public func readComplex(_ column: String, start: Int, count: Int, cellSize: Int,
                            into out: UnsafeMutableBufferPointer<Float>) throws {
        precondition(out.count >= 2 * count * cellSize)
        try check { ccasa_get_complex_range(handle, column, Int64(start), Int64(count), Int64(cellSize), out.baseAddress, $0, $1) }
    }

    public func writeComplex(_ column: String, start: Int, count: Int, cellSize: Int,
                             from data: UnsafeBufferPointer<Float>) throws {
        precondition(data.count >= 2 * count * cellSize)
        try check { ccasa_put_complex_range(handle, column, Int64(start), Int64(count), Int64(cellSize), data.baseAddress, $0, $1) }
    }

    public func readFloats(_ column: String, start: Int, count: Int, cellSize: Int,
                           into out: UnsafeMutableBufferPointer<Float>) throws {
        precondition(out.count >= count * cellSize)
        try check { ccasa_get_float_range(handle, column, Int64(start), Int64(count), Int64(cellSize), out.baseAddress, $0, $1) }
    }

    public func writeFloats(_ column: String, start: Int, count: Int, cellSize: Int,
                            from data: UnsafeBufferPointer<Float>) throws {
        try check { ccasa_put_float_range(handle, column, Int64(start), Int64(count), Int64(cellSize), data.baseAddress, $0, $1) }
    }

    public func readFlags(_ column: String, start: Int, count: Int, cellSize: Int,
                          into out: UnsafeMutableBufferPointer<UInt8>) throws {
        precondition(out.count >= count * cellSize)
        try check { ccasa_get_bool_array_range(handle, column, Int64(start), Int64(count), Int64(cellSize), out.baseAddress, $0, $1) }
    }

    public func writeFlags(_ column: String, start: Int, count: Int, cellSize: Int,
                           from data: UnsafeBufferPointer<UInt8>) throws {
        try check { ccasa_put_bool_array_range(handle, column, Int64(start), Int64(count), Int64(cellSize), data.baseAddress, $0, $1) }
    }

    public func readDoubleArrays(_ column: String, start: Int, count: Int, cellSize: Int) throws -> [Double] {
        var out = [Double](repeating: 0, count: count * cellSize)
        if count > 0 {
            try check { ccasa_get_double_array_range(handle, column, Int64(start), Int64(count), Int64(cellSize), &out, $0, $1) }
        }
        return out
    }

    public func writeDoubleArrays(_ column: String, start: Int, count: Int, cellSize: Int, _ values: [Double]) throws {
        try check { ccasa_put_double_array_range(handle, column, Int64(start), Int64(count), Int64(cellSize), values, $0, $1) }
    }

    /// One array cell of doubles (any shape up to `maxElements`), flattened.
    public func doubleCell(_ column: String, row: Int, maxElements: Int) throws -> [Double] {
        var out = [Double](repeating: 0, count: maxElements)
        try check { ccasa_get_double_array_cell(handle, column, Int64(row), Int64(maxElements), &out, $0, $1) }
        return out
    }

    /// One array cell of ints, padded with -1 up to `maxElements`.
    public func intCell(_ column: String, row: Int, maxElements: Int) throws -> [Int32] {
        var out = [Int32](repeating: -1, count: maxElements)
        try check { ccasa_get_int_array_cell(handle, column, Int64(row), Int64(maxElements), &out, $0, $1) }
        return out
    }

    // MARK: Internals

    func check(_ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws {
        var err = ErrorBuffer()
        if err.call(body) != 0 { throw PipelineError(.badInput, err.message) }
    }
}

/// A C error buffer that the shim fills; `message` is the text it wrote.
struct ErrorBuffer {
    var bytes = [CChar](repeating: 0, count: 2048)

    mutating func call<R>(_ body: (UnsafeMutablePointer<CChar>, Int) -> R) -> R {
        bytes.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
    }

    var message: String { stringFromC(bytes) }
}

/// casacore measures: frames and UVW, through the shim.
public enum Measures {
    /// Silences casacore's logger (it warns about missing IERS tables on every conversion).
    public static func quietLogging() { ccasa_quiet_logging(1) }

    /// Per-antenna J2000 UVW (metres) towards a direction, per time: result[t][a] = (u, v, w).
    /// A baseline p–q (ANTENNA1 = p, ANTENNA2 = q) has uvw = result[t][q] − result[t][p].
    public static func antennaUVW(itrf: [SIMD3<Double>], times: [Double], ra: Double, dec: Double,
                                  frame: String) throws -> [[SIMD3<Double>]] {
        let flat = itrf.flatMap { [$0.x, $0.y, $0.z] }
        var out = [Double](repeating: 0, count: times.count * itrf.count * 3)
        var err = ErrorBuffer()
        let rc = err.call { ccasa_antenna_uvw(flat, Int32(itrf.count), times, Int32(times.count), ra, dec, frame, &out, $0, $1) }
        if rc != 0 { throw PipelineError(.badInput, err.message) }
        return (0..<times.count).map { t in
            (0..<itrf.count).map { a in
                let i = (t * itrf.count + a) * 3
                return SIMD3(out[i], out[i + 1], out[i + 2])
            }
        }
    }

    /// Converts (ra, dec) in radians between direction frames ("J2000", "B1950", ...).
    public static func convert(ra: Double, dec: Double, from: String, to: String, epoch: Double) throws -> (ra: Double, dec: Double) {
        if from == to { return (ra, dec) }
        var r = 0.0, d = 0.0
        var err = ErrorBuffer()
        let rc = err.call { ccasa_convert_direction(ra, dec, from, to, epoch, &r, &d, $0, $1) }
        if rc != 0 { throw PipelineError(.badInput, err.message) }
        return (r, d)
    }
}

/// A Swift string from a NUL-terminated C buffer.
func stringFromC(_ buf: [CChar]) -> String {
    let end = buf.firstIndex(of: 0) ?? buf.count
    return String(decoding: buf[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
