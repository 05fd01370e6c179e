// selfcal-bench: measurements for bench/*.sh, not a user command. Prints one JSON object per
// measurement on stdout so the driving script can take medians beside its peer's numbers.
import Foundation
import SelfCal

/// One measurement, as the bench scripts read it.
struct Sample: Encodable {
    var tool = "swift"
    var op: String
    var variant: String
    var seconds: Double
    var bytes: Int
    var repeatIndex: Int
}

func emit(_ s: Sample) {
    let enc = JSONEncoder()
    enc.keyEncodingStrategy = .convertToSnakeCase
    enc.outputFormatting = [.sortedKeys]
    print(String(decoding: try! enc.encode(s), as: UTF8.self))
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func fail(_ msg: String) -> Never {
    FileHandle.standardError.write(Data("selfcal-bench: \(msg)\n".utf8))
    exit(2)
}

/// `io MS [--column DATA] [--repeats N] [--target-rows R]`: DATA read and write throughput
/// through MeasurementSet's chunked API, each measurement on a freshly opened MS. Variants:
/// `readData`/`writeData` with `rowChunks(targetRows: R)` (default 50,000, as solve and apply
/// use it), the same with `-timestep` (one timestep per chunk), and `chunk` (`read(chunk,
/// dataColumn:)`, as the solver reads).
func io(_ args: [String]) throws {
    guard let path = args.first else { fail("usage: io MS [--column DATA] [--repeats N] [--target-rows R]") }
    var column = "DATA", repeats = 1, targetRows = 50_000
    var only: String?  // one variant, for profiling
    var i = 1
    while i < args.count {
        let v = i + 1 < args.count ? args[i + 1] : ""
        switch args[i] {
        case "--column": column = v
        case "--repeats": repeats = Int(v) ?? 1
        case "--target-rows": targetRows = Int(v) ?? targetRows
        case "--only": only = v
        default: fail("unknown option \(args[i])")
        }
        i += 2
    }
    // rowChunks(targetRows: n) with n = the rows of one timestep cuts at every timestep
    // (chunks are capped at 4n rows, so a smaller n would give smaller chunks).
    let rowsPerTime: Int = try {
        let t = try MeasurementSet(path: path).table.doubles("TIME")
        return max(1, t.prefix { $0 == t.first }.count)
    }()
    for r in 0..<repeats {
        // Default chunks (as solve/apply use them) and one timestep per chunk.
        func wanted(_ v: String) -> Bool { only == nil || only == v }
        for (variant, rows) in [("readData", targetRows), ("readData-timestep", rowsPerTime)] where wanted(variant) {
            try readColumn(path, column, targetRows: rows, variant: variant, repeatIndex: r)
        }
        if wanted("chunk") { try readChunks(path, column, targetRows: targetRows, repeatIndex: r) }
        for (variant, rows) in [("writeData", targetRows), ("writeData-timestep", rowsPerTime)] where wanted(variant) {
            try writeColumn(path, column, targetRows: rows, variant: variant, repeatIndex: r)
        }
    }
}

/// The column alone, through `readData` into one reused buffer.
func readColumn(_ path: String, _ column: String, targetRows: Int, variant: String, repeatIndex r: Int) throws {
    let ms = try MeasurementSet(path: path)
    let chunks = try ms.rowChunks(targetRows: targetRows)
    var buf = [Float]()
    var bytes = 0
    let t0 = now()
    for c in chunks {
        let (spw, pol) = try ms.setup(of: c.dataDescription)
        let cs = spw.channelCount * pol.correlations.count
        try ms.readData(column, chunk: c, cellSize: cs, into: &buf)
        bytes += c.count * cs * 8
    }
    emit(Sample(op: "read", variant: variant, seconds: now() - t0, bytes: bytes, repeatIndex: r))
}

/// As the solver reads: a new VisibilityChunk per chunk (data plus TIME, ANTENNA1/2, FLAG_ROW).
func readChunks(_ path: String, _ column: String, targetRows: Int, repeatIndex r: Int) throws {
    let ms = try MeasurementSet(path: path)
    let chunks = try ms.rowChunks(targetRows: targetRows)
    var bytes = 0
    var check: Float = 0
    let t0 = now()
    for c in chunks {
        let v = try ms.read(c, dataColumn: column)
        bytes += v.rowCount * v.cellSize * 8
        check += v.data[0]
    }
    emit(Sample(op: "read", variant: "chunk", seconds: now() - t0, bytes: bytes, repeatIndex: r))
    if check.isNaN { print("#") }
}

/// Writes back what is there (so the MS is unchanged), chunk by chunk, then flushes; the flush
/// is inside the timing.
func writeColumn(_ path: String, _ column: String, targetRows: Int, variant: String, repeatIndex r: Int) throws {
    let ms = try MeasurementSet(path: path, mode: .readWrite)
    let chunks = try ms.rowChunks(targetRows: targetRows)
    var all: [[Float]] = []
    for c in chunks {
        let (spw, pol) = try ms.setup(of: c.dataDescription)
        var b = [Float]()
        try ms.readData(column, chunk: c, cellSize: spw.channelCount * pol.correlations.count, into: &b)
        all.append(b)
    }
    try ms.table.flush()
    var bytes = 0
    let t0 = now()
    for (c, b) in zip(chunks, all) {
        let (spw, pol) = try ms.setup(of: c.dataDescription)
        let cs = spw.channelCount * pol.correlations.count
        try ms.writeData(column, chunk: c, cellSize: cs, from: b)
        bytes += c.count * cs * 8
    }
    try ms.table.flush()
    emit(Sample(op: "write", variant: variant, seconds: now() - t0, bytes: bytes, repeatIndex: r))
    try ms.table.release()
}

let argv = Array(CommandLine.arguments.dropFirst())
guard let cmd = argv.first else { fail("usage: selfcal-bench io MS [options]") }
do {
    switch cmd {
    case "io": try io(Array(argv.dropFirst()))
    default: fail("unknown command \(cmd)")
    }
} catch {
    fail("\(error)")
}
