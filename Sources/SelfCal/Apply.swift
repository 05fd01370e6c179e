import Foundation
import Imaging
import Logging

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

    @discardableResult
    public func apply(to ms: MeasurementSet) throws -> Summary {
        guard ms.isWritable else {
            throw PipelineError(.badInput, "the MS must be opened for writing to apply calibration", context: ms.path)
        }
        try ms.table.requireColumn("DATA")
        let nant = ms.antennas.count
        let interp = GainInterpolator(tables: tables)
        try ms.ensureDataColumn("CORRECTED_DATA")
        var summary = Summary()
        for chunk in try ms.rowChunks() {
            try checkCancelled()
            let (spw, pol) = try ms.setup(of: chunk.dataDescription)
            var v = try ms.read(chunk, dataColumn: "DATA", extra: [.flags])
            let npol = v.correlationCount, nchan = v.channelCount, cs = v.cellSize
            let receptors = pol.correlations.map(\.receptors)
            var cache: [Double: [SIMD2<Double>?]] = [:]
            var flagsChanged = false
            for row in 0..<v.rowCount {
                let t = v.time[row]
                if cache[t] == nil {
                    cache[t] = (0..<(2 * nant)).map { interp.gain(spw: spw.id, antenna: $0 / 2, receptor: $0 % 2, time: t) }
                }
                let g = cache[t]!
                let p = Int(v.antenna1[row]), q = Int(v.antenna2[row])
                for (ci, rec) in receptors.enumerated() {
                    guard p < nant, q < nant, let gp = g[p * 2 + rec.0], let gq = g[q * 2 + rec.1] else {
                        for ch in 0..<nchan {
                            let k = row * cs + ch * npol + ci
                            if v.flags[k] == 0 { v.flags[k] = 1; summary.newlyFlagged += 1; flagsChanged = true }
                            v.data[2 * k] = 0; v.data[2 * k + 1] = 0
                        }
                        continue
                    }
                    // 1 / (g_p conj(g_q))
                    let d = SIMD2(gp.x * gq.x + gp.y * gq.y, gp.y * gq.x - gp.x * gq.y)
                    let n2 = (d * d).sum()
                    let inv = n2 > 0 ? SIMD2(d.x / n2, -d.y / n2) : SIMD2<Double>(0, 0)
                    let ir = Float(inv.x), ii = Float(inv.y)
                    for ch in 0..<nchan {
                        let k = row * cs + ch * npol + ci
                        let vr = v.data[2 * k], vi = v.data[2 * k + 1]
                        v.data[2 * k] = vr * ir - vi * ii
                        v.data[2 * k + 1] = vr * ii + vi * ir
                    }
                }
            }
            try ms.writeData("CORRECTED_DATA", chunk: chunk, cellSize: cs, from: v.data)
            if flagsChanged { try ms.writeFlags(chunk: chunk, cellSize: cs, v.flags) }
            summary.rows += chunk.count
        }
        try ms.table.release()
        logger.info("applied \(tables.count) table(s) to \(summary.rows) rows; \(summary.newlyFlagged) samples newly flagged")
        return summary
    }
}
