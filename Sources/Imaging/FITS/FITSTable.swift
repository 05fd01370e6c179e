import SelfCalSupport
/// A FITS table extension held in memory as whole columns: how source catalogs are stored
/// (the NVSS catalog: extension `AIPS VL`, columns `RA(2000)` and `DEC(2000)` as 1D in degrees,
/// `PEAK INT` as 1E in JY/BEAM, `MAJOR AX`, `MINOR AX`, `POSANGLE` as 1E in degrees).
///
/// Writing produces a binary table; reading accepts binary and ASCII tables. Scalar numeric and
/// string columns are read; other columns (vectors, variable-length arrays, logicals, bits,
/// complex) are listed with `.unsupported` values.
public struct FITSTable: Sendable {
    public struct Column: Sendable {
        public enum Values: Sendable {
            /// 64-bit floats (TFORM `1D`); integer columns are read as this too.
            case double([Double])
            /// 32-bit floats (TFORM `1E`).
            case float([Float])
            /// Fixed-width strings (TFORM `nA`), trailing blanks dropped.
            case string([String])
            /// A column this type does not read, with its TFORM.
            case unsupported(format: String)
        }

        /// TTYPEn, as written (may contain blanks and parentheses: `PEAK INT`, `RA(2000)`).
        public var name: String
        /// TUNITn; empty when the file has none.
        public var unit: String
        public var values: Values

        public init(name: String, unit: String = "", values: Values) {
            self.name = name
            self.unit = unit
            self.values = values
        }

        /// Number of values, or nil for an unsupported column.
        public var count: Int? {
            switch values {
            case .double(let values): return values.count
            case .float(let values): return values.count
            case .string(let values): return values.count
            case .unsupported: return nil
            }
        }
    }

    /// EXTNAME of the table HDU.
    public let extensionName: String
    public let columns: [Column]
    public let rowCount: Int
    /// The file the table was read from, for error context.
    public let path: String?

    public var columnNames: [String] { columns.map(\.name) }

    /// A table from whole columns.
    ///
    /// Throws `.badInput` when the columns have different lengths or the same name twice.
    public init(columns: [Column], extensionName: String = "AIPS VL") throws(PipelineError) {
        let lengths = columns.compactMap(\.count)
        if let first = lengths.first, lengths.contains(where: { $0 != first }) {
            let detail = columns.map { "\($0.name) \($0.count ?? 0)" }.joined(separator: ", ")
            throw PipelineError(.badInput, "table columns have different lengths: \(detail)",
                                context: extensionName)
        }
        var seen = Set<String>()
        for column in columns where !seen.insert(Self.normalised(column.name)).inserted {
            throw PipelineError(.badInput, "table has two columns named '\(column.name)'",
                                context: extensionName)
        }
        self.init(columns: columns, extensionName: extensionName,
                  rowCount: lengths.first ?? 0, path: nil)
    }

    private init(columns: [Column], extensionName: String, rowCount: Int, path: String?) {
        self.columns = columns
        self.extensionName = extensionName
        self.rowCount = rowCount
        self.path = path
    }

    // MARK: column access

    /// The column called `name`: an exact match, else one that matches ignoring case and
    /// surrounding blanks (as cfitsio matches column names).
    ///
    /// Throws `.badInput` naming the missing column and listing the columns present.
    public func column(_ name: String) throws(PipelineError) -> Column {
        if let column = columns.first(where: { $0.name == name }) { return column }
        let wanted = Self.normalised(name)
        if let column = columns.first(where: { Self.normalised($0.name) == wanted }) {
            return column
        }
        throw missingColumn(name)
    }

    /// The values of a numeric column as Doubles.
    ///
    /// Throws `.badInput` when the column is missing or does not hold numbers.
    public func doubles(_ name: String) throws(PipelineError) -> [Double] {
        let column = try column(name)
        switch column.values {
        case .double(let values): return values
        case .float(let values): return values.map(Double.init)
        case .string, .unsupported: throw wrongType(column, expected: "numbers")
        }
    }

    /// The values of a numeric column as Floats.
    ///
    /// Throws `.badInput` when the column is missing or does not hold numbers.
    public func floats(_ name: String) throws(PipelineError) -> [Float] {
        let column = try column(name)
        switch column.values {
        case .double(let values): return values.map(Float.init)
        case .float(let values): return values
        case .string, .unsupported: throw wrongType(column, expected: "numbers")
        }
    }

    /// The values of a string column.
    ///
    /// Throws `.badInput` when the column is missing or does not hold strings.
    public func strings(_ name: String) throws(PipelineError) -> [String] {
        let column = try column(name)
        guard case .string(let values) = column.values else {
            throw wrongType(column, expected: "strings")
        }
        return values
    }

    // MARK: I/O

    /// Reads a table extension: the one named `extensionName` (EXTNAME, case-insensitive), or
    /// the first table in the file. Each column is read whole, in one cfitsio call.
    ///
    /// - Parameter columns: names of the columns to read (default: all); reading only what is
    ///   needed saves a pass over the file per column left out.
    /// - Throws: `.badInput` naming the file when it is missing, not FITS, has no (such) table,
    ///   lacks a requested column (listing those present), or cannot be read.
    public static func read(path: String, extensionName: String? = nil,
                            columns wanted: [String]? = nil) throws(PipelineError) -> FITSTable
    {
        let file = try FITSFile.open(path: path)
        var hdu = 1
        var kind: FITSFile.HDUKind?
        var header: [FITSCard] = []
        var tablesSeen: [String] = []
        while true {
            guard let next = try file.moveToHDU(hdu) else {
                let what = extensionName.map { "no table extension named '\($0)'" }
                    ?? "no binary or ASCII table extension"
                let seen = tablesSeen.isEmpty
                    ? "" : "; tables present: \(tablesSeen.joined(separator: ", "))"
                throw PipelineError(.badInput, "\(what) in FITS file\(seen)", context: path)
            }
            if next != .image {
                header = parseHeader(records: try file.headerRecords())
                let name = header.first { $0.key == "EXTNAME" }?.text ?? ""
                tablesSeen.append(name.isEmpty ? "HDU \(hdu)" : "'\(name)'")
                if extensionName.map({ normalised($0) == normalised(name) }) ?? true {
                    kind = next
                    break
                }
            }
            hdu += 1
        }
        let shape = try file.tableShape()
        func keyword(_ key: String) -> String? { header.first { $0.key == key }?.text }
        let names = (0..<shape.columns).map { keyword("TTYPE\($0 + 1)") ?? "COL\($0 + 1)" }
        let extensionNameRead = keyword("EXTNAME") ?? ""

        // Which columns to read: all, or the requested ones (each must exist).
        var selected = Set(names.indices)
        if let wanted {
            selected = []
            let stub = FITSTable(columns: names.map { Column(name: $0, values: .double([])) },
                                 extensionName: extensionNameRead, rowCount: shape.rows,
                                 path: path)
            for name in wanted {
                let found = names.firstIndex(of: name)
                    ?? names.firstIndex { normalised($0) == normalised(name) }
                guard let found else { throw stub.missingColumn(name) }
                selected.insert(found)
            }
        }

        var columns: [Column] = []
        for index in names.indices where selected.contains(index) {
            let number = index + 1
            let format = keyword("TFORM\(number)") ?? "?"
            let values: Column.Values
            switch try file.columnKind(number, asciiTable: kind == .asciiTable) {
            case .string(let length):
                values = .string(try file.readStrings(column: number, rows: shape.rows,
                                                      width: length))
            case .float:
                values = .float(try file.readFloats(column: number, rows: shape.rows))
            case .double:
                values = .double(try file.readDoubles(column: number, rows: shape.rows))
            case .other:
                values = .unsupported(format: format)
            }
            columns.append(Column(name: names[index], unit: keyword("TUNIT\(number)") ?? "",
                                  values: values))
        }
        try file.close()
        return FITSTable(columns: columns, extensionName: extensionNameRead,
                         rowCount: shape.rows, path: path)
    }

    /// Writes the table as a binary table extension after an empty primary HDU (`ffcrtb`, then
    /// `ffpcld`/`ffpcle`/`ffpcls` per column in row chunks of `ffgrsz` rows). Overwrites `path`: the file is written
    /// beside it and renamed into place.
    ///
    /// Throws `.badInput` when a column is `.unsupported` or the file cannot be written.
    public func write(path: String) throws(PipelineError) {
        var formats: [String] = []
        for column in columns {
            switch column.values {
            case .double: formats.append("1D")
            case .float: formats.append("1E")
            case .string(let values):
                formats.append("\(max(values.map(\.utf8.count).max() ?? 1, 1))A")
            case .unsupported(let format):
                throw PipelineError(
                    .badInput, "cannot write column '\(column.name)' of format \(format)",
                    context: path)
            }
        }
        try writeFITSAtomically(path: path) { file throws(PipelineError) in
            try file.createBinaryTable(rows: rowCount, names: columnNames, formats: formats,
                                       units: columns.map(\.unit), extensionName: extensionName)
            // Row chunks that fit cfitsio's buffers, every column per chunk: writing whole
            // columns instead would rewrite the whole file once per column.
            let chunk = try file.optimalRowChunk()
            for start in stride(from: 0, to: rowCount, by: chunk) {
                let rows = start..<min(start + chunk, rowCount)
                for (index, column) in columns.enumerated() {
                    switch column.values {
                    case .double(let values):
                        try file.writeDoubles(values[rows], column: index + 1, firstRow: start + 1)
                    case .float(let values):
                        try file.writeFloats(values[rows], column: index + 1, firstRow: start + 1)
                    case .string(let values):
                        try file.writeStrings(values[rows], column: index + 1, firstRow: start + 1)
                    case .unsupported: break
                    }
                }
            }
        }
    }

    /// Writes Double columns (TFORM `1D`) as a binary table extension; see `write(path:)`.
    public static func write(
        path: String, columns: [(name: String, unit: String, values: [Double])],
        extensionName: String = "AIPS VL"
    ) throws(PipelineError) {
        let table = try FITSTable(
            columns: columns.map { Column(name: $0.name, unit: $0.unit, values: .double($0.values)) },
            extensionName: extensionName)
        try table.write(path: path)
    }

    // MARK: errors

    private func missingColumn(_ name: String) -> PipelineError {
        let present = columnNames.map { "'\($0)'" }.joined(separator: ", ")
        return PipelineError(
            .badInput,
            "no column '\(name)' in table '\(extensionName)'; columns present: \(present)",
            context: path ?? extensionName)
    }

    private func wrongType(_ column: Column, expected: String) -> PipelineError {
        let actual: String
        switch column.values {
        case .double: actual = "doubles"
        case .float: actual = "floats"
        case .string: actual = "strings"
        case .unsupported(let format): actual = "format \(format), which is not read"
        }
        return PipelineError(.badInput,
                             "column '\(column.name)' holds \(actual), not \(expected)",
                             context: path ?? extensionName)
    }

    private static func normalised(_ name: String) -> String {
        name.trimmingSpaces().uppercased()
    }
}
