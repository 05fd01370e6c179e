// Every call into cfitsio goes through this file: it owns the `fitsfile` handle and turns each
// non-zero status into a `PipelineError(.badInput, …, context: path)`.
//
// cfitsio's `fits_*` names are C macros Swift cannot see, so the `ff*` functions are called
// directly; each wrapper's doc comment names the call it makes. Files are opened and created with
// the disk-file variants (`ffdkopn`, `ffdkinit`), which take the path literally instead of parsing
// cfitsio's extended file-name syntax (`file.fits[1]`, `!file.fits`, …).

import CFITSIO
import Foundation

import SelfCalSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An open cfitsio file: one `fitsfile *`, used from one thread at a time, closed on `close()` or
/// when the handle goes away.
final class FITSFile {
    /// The path the file was opened or created with; the context of every error.
    let path: String
    private var handle: UnsafeMutablePointer<fitsfile>?

    private init(path: String, handle: UnsafeMutablePointer<fitsfile>) {
        self.path = path
        self.handle = handle
    }

    deinit {
        if let handle {
            var status: Int32 = 0
            ffclos(handle, &status)
        }
    }

    /// Opens an existing FITS file read-only (`ffdkopn`).
    ///
    /// Throws `.badInput` when the file does not exist, cannot be read, or is not FITS.
    static func open(path: String) throws(PipelineError) -> FITSFile {
        var handle: UnsafeMutablePointer<fitsfile>?
        var status: Int32 = 0
        ffdkopn(&handle, path, READONLY, &status)
        guard status == 0, let handle else {
            throw cfitsioError(status, "cannot open FITS file", path: path)
        }
        return FITSFile(path: path, handle: handle)
    }

    /// Creates a new, empty FITS file (`ffdkinit`); the file must not exist yet.
    static func create(path: String) throws(PipelineError) -> FITSFile {
        var handle: UnsafeMutablePointer<fitsfile>?
        var status: Int32 = 0
        ffdkinit(&handle, path, &status)
        guard status == 0, let handle else {
            throw cfitsioError(status, "cannot create FITS file", path: path)
        }
        return FITSFile(path: path, handle: handle)
    }

    /// Flushes and closes the file (`ffclos`). Call it after writing: a failed flush is an error
    /// here, where `deinit` would drop it.
    func close() throws(PipelineError) {
        guard let handle else { return }
        self.handle = nil
        var status: Int32 = 0
        ffclos(handle, &status)
        if status != 0 { throw Self.cfitsioError(status, "cannot close FITS file", path: path) }
    }

    /// Runs one cfitsio call on the open handle and throws if it set a status.
    ///
    /// - Parameter doing: what the call does, for the error message ("cannot read pixels").
    func call(
        _ doing: @autoclosure () -> String,
        _ body: (UnsafeMutablePointer<fitsfile>, inout Int32) -> Void
    ) throws(PipelineError) {
        guard let handle else {
            throw PipelineError(.badInput, "\(doing()): file already closed", context: path)
        }
        var status: Int32 = 0
        body(handle, &status)
        if status != 0 { throw Self.cfitsioError(status, doing(), path: path) }
    }

    /// Like `call`, but returns the status instead of throwing, for calls whose failure is an
    /// answer (no such HDU, end of file). Clears the messages cfitsio left for that status.
    func probe(_ body: (UnsafeMutablePointer<fitsfile>, inout Int32) -> Void) -> Int32 {
        guard let handle else { return FILE_NOT_OPENED }
        var status: Int32 = 0
        body(handle, &status)
        if status != 0 { _ = Self.drainMessages() }
        return status
    }

    // MARK: HDUs and header

    enum HDUKind { case image, asciiTable, binaryTable }

    /// Moves to HDU number `number` (1-based, `ffmahd`) and returns its kind, or nil when the
    /// file has fewer HDUs.
    func moveToHDU(_ number: Int) throws(PipelineError) -> HDUKind? {
        var type: Int32 = 0
        let status = probe { ffmahd($0, Int32(number), &type, &$1) }
        switch status {
        case 0: return type == IMAGE_HDU ? .image : type == ASCII_TBL ? .asciiTable : .binaryTable
        case END_OF_FILE, BAD_HDU_NUM: return nil
        default: throw Self.cfitsioError(status, "cannot read HDU \(number)", path: path)
        }
    }

    // MARK: images

    /// Moves to the first image HDU with at least two non-empty axes (the primary array,
    /// normally) and returns its axis lengths.
    ///
    /// Throws `.badInput` when the file holds no such image.
    func moveToFirstImage() throws(PipelineError) -> [Int] {
        var hdu = 1
        while let kind = try moveToHDU(hdu) {
            if kind == .image {
                let axes = try imageAxes()
                if axes.count >= 2 && axes[0] > 0 && axes[1] > 0 { return axes }
            }
            hdu += 1
        }
        throw PipelineError(.badInput, "no image with two or more axes in FITS file", context: path)
    }

    /// The axis lengths of the current image HDU (`ffgidm`, `ffgiszll`); empty for NAXIS = 0.
    func imageAxes() throws(PipelineError) -> [Int] {
        var count: Int32 = 0
        try call("cannot read image dimensions") { ffgidm($0, &count, &$1) }
        guard count > 0 else { return [] }
        var axes = [Int64](repeating: 0, count: Int(count))
        try call("cannot read image size") { ffgiszll($0, count, &axes, &$1) }
        return axes.map { Int($0) }
    }

    /// The first `width × height` plane of the current image HDU as floats, scaling (BSCALE,
    /// BZERO) applied (`ffgidt`, `ffgpxvll`). Float images are read as they are (NaN and ±Inf
    /// kept); in integer images, BLANK pixels become NaN.
    func readFirstPlane(width: Int, height: Int, axisCount: Int) throws(PipelineError) -> [Float] {
        var bitpix: Int32 = 0
        try call("cannot read image type") { ffgidt($0, &bitpix, &$1) }
        var firstPixel = [Int64](repeating: 1, count: axisCount)
        // A null value makes cfitsio treat IEEE NaN and ±Inf alike as undefined; float images
        // need no null check at all.
        var blank = Float.nan
        let checkBlanks = bitpix > 0
        var anyBlank: Int32 = 0
        let count = width * height
        var failure: PipelineError?
        let pixels = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            buffer.initialize(repeating: .nan)
            initialized = count
            do throws(PipelineError) {
                try withUnsafeMutablePointer(to: &blank) { blank throws(PipelineError) in
                    try call("cannot read \(width)×\(height) pixels") {
                        ffgpxvll($0, TFLOAT, &firstPixel, Int64(count), checkBlanks ? blank : nil,
                                 buffer.baseAddress, &anyBlank, &$1)
                    }
                }
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return pixels
    }

    /// Appends a 32-bit float image HDU with these axis lengths (`ffcrimll`).
    func createFloatImage(axes: [Int]) throws(PipelineError) {
        var lengths = axes.map { Int64($0) }
        try call("cannot create image") {
            ffcrimll($0, FLOAT_IMG, Int32(lengths.count), &lengths, &$1)
        }
    }

    /// Writes `pixels` from the first pixel of the current image on (`ffppxll`).
    func writePixels(_ pixels: [Float], axisCount: Int) throws(PipelineError) {
        // cfitsio may byte-swap the caller's buffer in place while writing: give it a copy.
        var scratch = pixels
        var firstPixel = [Int64](repeating: 1, count: axisCount)
        let count = Int64(scratch.count)
        try scratch.withUnsafeMutableBufferPointer { buffer throws(PipelineError) in
            try call("cannot write \(count) pixels") {
                ffppxll($0, TFLOAT, &firstPixel, count, buffer.baseAddress, &$1)
            }
        }
    }

    /// The 80-character records of the current HDU's header, without END (`ffghsp`, `ffgrec`).
    func headerRecords() throws(PipelineError) -> [String] {
        var count: Int32 = 0
        var more: Int32 = 0
        try call("cannot read header size") { ffghsp($0, &count, &more, &$1) }
        var records: [String] = []
        records.reserveCapacity(Int(count))
        var card = [CChar](repeating: 0, count: Int(FLEN_CARD) + 1)
        for index in stride(from: 1, through: Int(count), by: 1) {
            try call("cannot read header record \(index)") { ffgrec($0, Int32(index), &card, &$1) }
            records.append(string(fromCString: card))
        }
        return records
    }

    /// The current HDU's header as one string of 80-character records, the form wcslib's
    /// `wcspih` parses (`ffhdr2str`, freed with `fffree`).
    func headerString() throws(PipelineError) -> (text: String, records: Int) {
        var text: UnsafeMutablePointer<CChar>?
        var count: Int32 = 0
        try call("cannot read header") { ffhdr2str($0, 0, nil, 0, &text, &count, &$1) }
        guard let text else { return ("", 0) }
        defer {
            var status: Int32 = 0
            fffree(text, &status)
        }
        return (String(cString: text), Int(count))
    }

    /// Appends one 80-character record to the current header (`ffprec`).
    func appendRecord(_ record: String) throws(PipelineError) {
        try call("cannot write header record '\(record)'") { ffprec($0, record, &$1) }
    }

    // MARK: tables

    /// Appends a binary table HDU with `rows` rows and one column per name (`ffcrtb`).
    func createBinaryTable(rows: Int, names: [String], formats: [String], units: [String],
                           extensionName: String) throws(PipelineError)
    {
        let columnCount = Int32(names.count)
        try withCStringArray(names) { (cNames) throws(PipelineError) in
            try withCStringArray(formats) { (cFormats) throws(PipelineError) in
                try withCStringArray(units) { (cUnits) throws(PipelineError) in
                    try call("cannot create binary table '\(extensionName)'") {
                        ffcrtb($0, BINARY_TBL, Int64(rows), columnCount,
                               cNames, cFormats, cUnits, extensionName, &$1)
                    }
                }
            }
        }
    }

    /// Number of columns and rows of the current table HDU (`ffgncl`, `ffgnrwll`).
    func tableShape() throws(PipelineError) -> (columns: Int, rows: Int) {
        var columns: Int32 = 0
        var rows: Int64 = 0
        try call("cannot read table column count") { ffgncl($0, &columns, &$1) }
        try call("cannot read table row count") { ffgnrwll($0, &rows, &$1) }
        return (Int(columns), Int(rows))
    }

    /// How a table column can be read whole.
    enum ColumnKind: Equatable {
        /// One fixed-width string per row.
        case string(length: Int)
        /// One 32-bit float per row.
        case float
        /// One number per row that converts to Double without loss (D, and integer types).
        case double
        /// Anything else: vectors, variable-length arrays, logicals, bits, complex.
        case other
    }

    /// The kind of column `column` (1-based) of the current table (`ffgtclll`).
    func columnKind(_ column: Int, asciiTable: Bool) throws(PipelineError) -> ColumnKind {
        var code: Int32 = 0
        var repeatCount: Int64 = 0
        var width: Int64 = 0
        try call("cannot read type of column \(column)") {
            ffgtclll($0, Int32(column), &code, &repeatCount, &width, &$1)
        }
        switch code {
        case TSTRING where asciiTable:
            return .string(length: max(Int(width), 1))
        case TSTRING where repeatCount == width:
            return .string(length: max(Int(repeatCount), 1))
        case TFLOAT where repeatCount == 1:
            return .float
        case TDOUBLE, TBYTE, TSBYTE, TSHORT, TUSHORT, TINT, TUINT, TLONG, TULONG, TLONGLONG,
             TULONGLONG where repeatCount == 1:
            return .double
        default:
            return .other
        }
    }

    /// Column `column` (1-based) of the first `rows` rows as Doubles, converted from any numeric
    /// type, nulls as NaN, in one call (`ffgcvd`).
    func readDoubles(column: Int, rows: Int) throws(PipelineError) -> [Double] {
        let null = Double.nan
        var anyNull: Int32 = 0
        var failure: PipelineError?
        let values = [Double](unsafeUninitializedCapacity: rows) { buffer, initialized in
            buffer.initialize(repeating: .nan)
            initialized = rows
            guard rows > 0 else { return }
            do throws(PipelineError) {
                try call("cannot read column \(column)") {
                    ffgcvd($0, Int32(column), 1, 1, Int64(rows), null, buffer.baseAddress,
                           &anyNull, &$1)
                }
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return values
    }

    /// Column `column` (1-based) of the first `rows` rows as Floats, nulls as NaN (`ffgcve`).
    func readFloats(column: Int, rows: Int) throws(PipelineError) -> [Float] {
        let null = Float.nan
        var anyNull: Int32 = 0
        var failure: PipelineError?
        let values = [Float](unsafeUninitializedCapacity: rows) { buffer, initialized in
            buffer.initialize(repeating: .nan)
            initialized = rows
            guard rows > 0 else { return }
            do throws(PipelineError) {
                try call("cannot read column \(column)") {
                    ffgcve($0, Int32(column), 1, 1, Int64(rows), null, buffer.baseAddress,
                           &anyNull, &$1)
                }
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return values
    }

    /// String column `column` (1-based) of the first `rows` rows, `width` characters each,
    /// trailing blanks dropped (`ffgcvs`).
    func readStrings(column: Int, rows: Int, width: Int) throws(PipelineError) -> [String] {
        guard rows > 0 else { return [] }
        let stride = width + 1
        let storage = UnsafeMutablePointer<CChar>.allocate(capacity: rows * stride)
        storage.initialize(repeating: 0, count: rows * stride)
        let cells = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: rows)
        defer {
            storage.deallocate()
            cells.deallocate()
        }
        for row in 0..<rows { cells[row] = storage + row * stride }
        var null: [CChar] = [0]
        var anyNull: Int32 = 0
        try call("cannot read column \(column)") {
            ffgcvs($0, Int32(column), 1, 1, Int64(rows), &null, cells, &anyNull, &$1)
        }
        return (0..<rows).map { row in
            String(cString: storage + row * stride).trimmingTrailingSpaces()
        }
    }

    /// How many rows cfitsio's buffers hold at once for the current table (`ffgrsz`): the
    /// chunk size in which writing every column is fastest.
    func optimalRowChunk() throws(PipelineError) -> Int {
        var rows = 0
        try call("cannot read optimal row count") { ffgrsz($0, &rows, &$1) }
        return max(rows, 1)
    }

    /// Writes `values` into column `column` (1-based) from row `firstRow` (1-based) on
    /// (`ffpcld`).
    func writeDoubles(_ values: ArraySlice<Double>, column: Int, firstRow: Int)
        throws(PipelineError)
    {
        guard !values.isEmpty else { return }
        var scratch = Array(values)  // cfitsio may byte-swap the buffer in place
        try scratch.withUnsafeMutableBufferPointer { buffer throws(PipelineError) in
            try call("cannot write column \(column)") {
                ffpcld($0, Int32(column), Int64(firstRow), 1, Int64(buffer.count),
                       buffer.baseAddress, &$1)
            }
        }
    }

    /// Writes `values` into column `column` (1-based) from row `firstRow` (1-based) on
    /// (`ffpcle`).
    func writeFloats(_ values: ArraySlice<Float>, column: Int, firstRow: Int)
        throws(PipelineError)
    {
        guard !values.isEmpty else { return }
        var scratch = Array(values)  // cfitsio may byte-swap the buffer in place
        try scratch.withUnsafeMutableBufferPointer { buffer throws(PipelineError) in
            try call("cannot write column \(column)") {
                ffpcle($0, Int32(column), Int64(firstRow), 1, Int64(buffer.count),
                       buffer.baseAddress, &$1)
            }
        }
    }

    /// Writes `values` into string column `column` (1-based) from row `firstRow` (1-based) on
    /// (`ffpcls`).
    func writeStrings(_ values: ArraySlice<String>, column: Int, firstRow: Int)
        throws(PipelineError)
    {
        guard !values.isEmpty else { return }
        try withCStringArray(Array(values)) { (cells) throws(PipelineError) in
            try call("cannot write column \(column)") {
                ffpcls($0, Int32(column), Int64(firstRow), 1, Int64(values.count), cells, &$1)
            }
        }
    }

    // MARK: errors

    /// A `PipelineError(.badInput)` carrying cfitsio's text for `status` (`ffgerr`) and the
    /// messages it left on its error stack (`ffgmsg`).
    static func cfitsioError(_ status: Int32, _ doing: String, path: String) -> PipelineError {
        var text = [CChar](repeating: 0, count: Int(FLEN_ERRMSG) + 1)
        ffgerr(status, &text)
        var message = "\(doing): \(string(fromCString: text)) (cfitsio status \(status))"
        let details = drainMessages().filter { !$0.isEmpty && $0 != path }
        if !details.isEmpty {
            message += " [\(details.prefix(3).joined(separator: "; "))]"
        }
        return PipelineError(.badInput, message, context: path)
    }

    /// Pops every message off cfitsio's error stack (`ffgmsg`).
    private static func drainMessages() -> [String] {
        var messages: [String] = []
        var text = [CChar](repeating: 0, count: Int(FLEN_ERRMSG) + 1)
        while ffgmsg(&text) != 0 {
            let line = string(fromCString: text).trimmingTrailingSpaces()
            if !line.isEmpty, !messages.contains(line) { messages.append(line) }
            if messages.count > 16 { break }
        }
        return messages
    }
}

/// Writes a FITS file next to `path` and renames it over `path` when `body` succeeded, so that a
/// reader never sees a half-written file and a failed write leaves the old file in place.
///
/// Throws `.badInput` for cfitsio failures and when the rename fails (e.g. no such directory).
func writeFITSAtomically(
    path: String, _ body: (FITSFile) throws(PipelineError) -> Void
) throws(PipelineError) {
    let temporary = "\(path).partial-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    unlink(temporary)
    do throws(PipelineError) {
        let file = try FITSFile.create(path: temporary)
        try body(file)
        try file.close()
    } catch {
        unlink(temporary)
        throw error
    }
    if rename(temporary, path) != 0 {
        let reason = String(cString: strerror(errno))
        unlink(temporary)
        throw PipelineError(.badInput, "cannot move written FITS file into place: \(reason)",
                            context: path)
    }
}

/// Runs `body` with a C array of NUL-terminated copies of `strings` (`char **`), as cfitsio's
/// table calls take column names, formats, units and string cells.
func withCStringArray<R>(
    _ strings: [String],
    _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) throws(PipelineError) -> R
) throws(PipelineError) -> R {
    let pointers = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(
        capacity: max(strings.count, 1))
    for (index, string) in strings.enumerated() { pointers[index] = strdup(string) }
    defer {
        for index in strings.indices { free(pointers[index]) }
        pointers.deallocate()
    }
    return try body(pointers)
}

extension String {
    /// The string without trailing blanks, which FITS treats as insignificant.
    func trimmingTrailingSpaces() -> String {
        var end = endIndex
        while end > startIndex, self[index(before: end)] == " " { end = index(before: end) }
        return String(self[..<end])
    }

    /// The string without leading and trailing blanks.
    func trimmingSpaces() -> String {
        let trailing = trimmingTrailingSpaces()
        return String(trailing.drop(while: { $0 == " " }))
    }
}

// MARK: - Header cards

extension FITSCard {
    /// Parses one 80-character header record (`ffgknm` for the keyword, `ffpsvc` for value and
    /// comment, `ffdtyp` for the value's type). Never fails: a value cfitsio cannot classify is
    /// kept as a string of its raw text.
    static func parse(record: String) -> FITSCard {
        var name = [CChar](repeating: 0, count: Int(FLEN_KEYWORD) + 1)
        var valueText = [CChar](repeating: 0, count: Int(FLEN_VALUE) + 1)
        var commentText = [CChar](repeating: 0, count: Int(FLEN_COMMENT) + 1)
        var length: Int32 = 0
        var status: Int32 = 0
        var card = Array(record.utf8CString.prefix(Int(FLEN_CARD) - 1)) + [0]
        ffgknm(&card, &name, &length, &status)
        let key = status == 0 ? string(fromCString: name).uppercased() : ""
        status = 0

        let hasValueIndicator = record.utf8.count >= 10
            && (Array(record.utf8)[8] == UInt8(ascii: "=") || record.hasPrefix("HIERARCH "))
        if !hasValueIndicator || key == "COMMENT" || key == "HISTORY" || key.isEmpty {
            let text = record.utf8.count > 8
                ? String(decoding: Array(record.utf8).dropFirst(8), as: UTF8.self) : ""
            return FITSCard(key: key, value: .commentary, comment: text.trimmingTrailingSpaces())
        }

        ffpsvc(&card, &valueText, &commentText, &status)
        let raw = string(fromCString: valueText).trimmingSpaces()
        let comment = string(fromCString: commentText).trimmingTrailingSpaces()
        if status != 0 || raw.isEmpty {
            return FITSCard(key: key, value: .undefined, comment: comment)
        }
        var type: CChar = 0
        ffdtyp(raw, &type, &status)
        let value: Value
        switch status == 0 ? UInt8(bitPattern: type) : 0 {
        case UInt8(ascii: "C"): value = .string(unquoteFITSString(raw))
        case UInt8(ascii: "L"): value = .logical(raw == "T")
        case UInt8(ascii: "I"):
            if let integer = Int(raw) { value = .integer(integer) }
            else { value = parseFITSReal(raw).map { .real($0) } ?? .string(raw) }
        case UInt8(ascii: "F"): value = parseFITSReal(raw).map { .real($0) } ?? .string(raw)
        case UInt8(ascii: "X"): value = parseFITSComplex(raw) ?? .string(raw)
        default: value = .string(raw)
        }
        return FITSCard(key: key, value: value, comment: comment)
    }

    /// The card as 80-character header records: one, or several for a long string (the
    /// CONTINUE convention) or a long commentary text. Valued cards are formatted by `ffmkky`.
    ///
    /// Throws `.badInput` when cfitsio rejects the keyword or value.
    func records() throws(PipelineError) -> [String] {
        let key = self.key.uppercased()
        switch value {
        case .commentary:
            let text = Array(comment.utf8)
            var records: [String] = []
            var start = 0
            repeat {
                let piece = String(decoding: text[start..<min(start + 72, text.count)],
                                   as: UTF8.self)
                records.append(Self.pad(Self.pad(key, to: 8) + piece, to: 80))
                start += 72
            } while start < text.count
            return records
        case .undefined:
            let base = Self.pad(key, to: 8) + "= " + String(repeating: " ", count: 20)
            return [Self.pad(comment.isEmpty ? base : base + " / " + comment, to: 80)]
        case .string(let string):
            return try stringRecords(key: key, string: string)
        case .integer(let integer):
            return [try Self.makeCard(key, "\(integer)", comment)]
        case .real(let real):
            guard real.isFinite else {
                return try FITSCard(key: key, value: .undefined, comment: comment).records()
            }
            return [try Self.makeCard(key, formatFITSReal(real), comment)]
        case .logical(let flag):
            return [try Self.makeCard(key, flag ? "T" : "F", comment)]
        case .complex(let re, let im):
            return [try Self.makeCard(key, "(\(formatFITSReal(re)), \(formatFITSReal(im)))",
                                      comment)]
        }
    }

    /// A string card, split over CONTINUE records when it does not fit in one.
    private func stringRecords(key: String, string: String) throws(PipelineError) -> [String] {
        // Escape quotes, then cut into pieces that never split a doubled quote.
        var pieces: [String] = []
        var current = ""
        var currentLength = 0
        let limit = 67  // leaves room for the quotes and the '&' continuation mark
        for character in string {
            let escaped = character == "'" ? "''" : String(character)
            let length = escaped.utf8.count
            if currentLength + length > limit {
                pieces.append(current)
                current = ""
                currentLength = 0
            }
            current += escaped
            currentLength += length
        }
        pieces.append(current)
        if pieces.count == 1 {
            let padded = currentLength < 8 ? Self.pad(current, to: 8) : current
            return [try Self.makeCard(key, "'\(padded)'", comment)]
        }
        var records = [try Self.makeCard(key, "'\(pieces[0])&'", "")]
        for (index, piece) in pieces.enumerated().dropFirst() {
            let last = index == pieces.count - 1
            var record = "CONTINUE  '\(piece)\(last ? "" : "&")'"
            if last, !comment.isEmpty { record += " / \(comment)" }
            records.append(Self.pad(record, to: 80))
        }
        return records
    }

    /// One card from keyword, raw value text and comment (`ffmkky`).
    private static func makeCard(_ key: String, _ value: String, _ comment: String)
        throws(PipelineError) -> String
    {
        var card = [CChar](repeating: 0, count: Int(FLEN_CARD) + 1)
        var valueText = Array(value.utf8CString)
        var status: Int32 = 0
        ffmkky(key, &valueText, comment, &card, &status)
        if status != 0 {
            throw FITSFile.cfitsioError(status, "cannot format header card \(key) = \(value)",
                                        path: key)
        }
        return pad(string(fromCString: card), to: 80)
    }

    private static func pad(_ text: String, to width: Int) -> String {
        let bytes = Array(text.utf8)
        if bytes.count >= width { return String(decoding: bytes.prefix(width), as: UTF8.self) }
        return text + String(repeating: " ", count: width - bytes.count)
    }
}

/// Joins string cards continued with `&` and CONTINUE records into one card each; a CONTINUE
/// record that follows no such string is kept as commentary.
func parseHeader(records: [String]) -> [FITSCard] {
    var cards: [FITSCard] = []
    cards.reserveCapacity(records.count)
    for record in records {
        if record.hasPrefix("CONTINUE"), let last = cards.last,
           case .string(let head) = last.value, head.hasSuffix("&")
        {
            // Parse the continuation as if it were an ordinary string card (a keyword other
            // than CONTINUE, which ffpsvc treats specially).
            let tail = String(decoding: Array(record.utf8).dropFirst(10), as: UTF8.self)
            let continuation = FITSCard.parse(record: "STRVALUE= " + tail)
            if case .string(let more) = continuation.value {
                let comment = [last.comment, continuation.comment]
                    .filter { !$0.isEmpty }.joined(separator: " ")
                cards[cards.count - 1] = FITSCard(key: last.key,
                                                  value: .string(String(head.dropLast()) + more),
                                                  comment: comment)
                continue
            }
        }
        cards.append(FITSCard.parse(record: record))
    }
    return cards
}

/// `'it''s '` → `it's`: strips the quotes, undoubles inner quotes and drops trailing blanks.
private func unquoteFITSString(_ raw: String) -> String {
    var body = Substring(raw)
    if body.hasPrefix("'") { body = body.dropFirst() }
    if body.hasSuffix("'") { body = body.dropLast() }
    return body.replacingOccurrences(of: "''", with: "'").trimmingTrailingSpaces()
}

/// A FITS real (`1.5`, `65.`, `1.0D+03`, `-2E-5`) as a Double.
private func parseFITSReal(_ raw: String) -> Double? {
    Double(raw.replacingOccurrences(of: "D", with: "E").replacingOccurrences(of: "d", with: "e"))
}

/// A FITS complex value `(re, im)`.
private func parseFITSComplex(_ raw: String) -> FITSCard.Value? {
    let inner = raw.trimmingSpaces().dropFirst().dropLast().split(separator: ",")
    guard inner.count == 2, let re = parseFITSReal(String(inner[0]).trimmingSpaces()),
          let im = parseFITSReal(String(inner[1]).trimmingSpaces()) else { return nil }
    return .complex(re, im)
}

/// The shortest text that reads back as the same Double, with FITS's upper-case exponent.
func formatFITSReal(_ value: Double) -> String {
    "\(value)".uppercased()
}

/// The text of a NUL-terminated C character buffer.
func string(fromCString buffer: [CChar]) -> String {
    String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) },
           as: UTF8.self)
}
