import Foundation
import Logging
import SelfCalSupport

/// Writes CORRECTED_DATA = DATA corrected by one or more gain tables, chunk by chunk:
/// CORRECTED_pq = V_pq / (g_p · conj(g_q)) per correlation (receptors of each hand).
/// Samples whose needed solution is flagged (or missing) are flagged in FLAG, as CASA's applycal
/// does; WEIGHT is left unchanged (calwt=False). DATA is only read.
public struct GainApplier: Sendable {
    public var tables: [GainTable]
    public var logger: Logger

    public init(tables: [GainTable], logger: Logger = Logger(label: "selfcal.apply")) {
        self.tables = tables
        self.logger = logger
    }

    public struct Summary: Sendable {
        public var rows = 0
        public var newlyFlagged = 0
    }

    /// One chunk in flight through the apply pipeline.
    final class Slot: @unchecked Sendable {
        var v = VisibilityChunk(chunk: RowChunk(start: 0, count: 0, dataDescription: 0), channelCount: 0, correlationCount: 0)
        var flagsChanged = false
    }

    /// Counts kept by the arithmetic side (one thread at a time).
    final class Counts: @unchecked Sendable {
        var rows = 0
        var newlyFlagged = 0
    }

    /// Streams the MS once: DATA and FLAG are read, corrected and written as CORRECTED_DATA (and
    /// FLAG where it changed) chunk by chunk; reading chunk k+1 and writing chunk k−1 (casacore,
    /// one thread) overlap the arithmetic on chunk k (the other).
    @discardableResult
    public func apply(to ms: MeasurementSet) throws -> Summary {
        try apply(to: ms, chunks: nil)
    }

    /// Like `apply(to:)`, over the given chunks only (nil: the whole MS).
    @discardableResult
    func apply(to ms: MeasurementSet, chunks only: [RowChunk]?) throws -> Summary {
        guard ms.isWritable else {
            throw PipelineError(.badInput, "the MS must be opened for writing to apply calibration", context: ms.path)
        }
        try ms.table.requireColumn("DATA")
        let nant = ms.antennas.count
        let interp = GainInterpolator(tables: tables)
        try ms.ensureDataColumn("CORRECTED_DATA")
        let chunks = try only ?? ms.rowChunks()
        let counts = Counts()
        try pipelinedChunks(
            count: chunks.count, slots: [Slot(), Slot(), Slot()],
            read: { i, slot in
                try ms.read(chunks[i], dataColumn: "DATA", extra: [.flags], into: &slot.v)
            },
            process: { _, slot in
                let (spw, pol) = try ms.setup(of: slot.v.chunk.dataDescription)
                let flagged = Self.correct(&slot.v, receptors: pol.correlations.map(\.receptors), nant: nant) { _, t in
                    (0..<(2 * nant)).map { interp.gain(spw: spw.id, antenna: $0 / 2, receptor: $0 % 2, time: t) }
                }
                slot.flagsChanged = flagged > 0
                counts.newlyFlagged += flagged
                counts.rows += slot.v.rowCount
            },
            write: { _, slot in
                let v = slot.v
                try ms.writeData("CORRECTED_DATA", chunk: v.chunk, cellSize: v.cellSize, from: v.data)
                if slot.flagsChanged { try ms.writeFlags(chunk: v.chunk, cellSize: v.cellSize, v.flags) }
            })
        try ms.table.release()
        let summary = Summary(rows: counts.rows, newlyFlagged: counts.newlyFlagged)
        logger.info("applied \(tables.count) table(s) to \(summary.rows) rows; \(summary.newlyFlagged) samples newly flagged")
        return summary
    }

    /// Corrects one chunk in place (`v.data` becomes CORRECTED_DATA); returns how many samples
    /// it newly flagged (their data set to 0). `gains(row, time)` gives the gain per antenna and
    /// receptor (index antenna · 2 + receptor; nil: flagged) for a row of the MS and its time; it
    /// is asked again only when the time changes.
    static func correct(_ v: inout VisibilityChunk, receptors: [(Int, Int)], nant: Int,
                        gains: (_ row: Int, _ time: Double) -> [SIMD2<Double>?]) -> Int {
        let npol = v.correlationCount, nchan = v.channelCount, cs = v.cellSize
        let rows = v.rowCount
        let time = v.time, antenna1 = v.antenna1, antenna2 = v.antenna2
        var newlyFlagged = 0
        // Gains per antenna and receptor at the chunk's times (a chunk holds few distinct times).
        var lastTime = Double.nan
        var g: [SIMD2<Double>?] = []
        v.data.withUnsafeMutableBufferPointer { dataB in
        v.flags.withUnsafeMutableBufferPointer { flagB in
            let data = dataB.baseAddress!, flags = flagB.baseAddress!
            for row in 0..<rows {
                let t = time[row]
                if t != lastTime {
                    g = gains(v.chunk.start + row, t)
                    lastTime = t
                }
                let p = Int(antenna1[row]), q = Int(antenna2[row])
                for (ci, rec) in receptors.enumerated() {
                    guard p >= 0, q >= 0, p < nant, q < nant, let gp = g[p * 2 + rec.0], let gq = g[q * 2 + rec.1] else {
                        var k = row * cs + ci
                        for _ in 0..<nchan {
                            if flags[k] == 0 { flags[k] = 1; newlyFlagged += 1 }
                            data[2 * k] = 0; data[2 * k + 1] = 0
                            k += npol
                        }
                        continue
                    }
                    // 1 / (g_p conj(g_q))
                    let d = SIMD2(gp.x * gq.x + gp.y * gq.y, gp.y * gq.x - gp.x * gq.y)
                    let n2 = (d * d).sum()
                    let inv = n2 > 0 ? SIMD2(d.x / n2, -d.y / n2) : SIMD2<Double>(0, 0)
                    let ir = Float(inv.x), ii = Float(inv.y)
                    var k = row * cs + ci
                    for _ in 0..<nchan {
                        let vr = data[2 * k], vi = data[2 * k + 1]
                        data[2 * k] = vr * ir - vi * ii
                        data[2 * k + 1] = vr * ii + vi * ir
                        k += npol
                    }
                }
            }
        } }
        return newlyFlagged
    }
}
