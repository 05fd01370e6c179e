import Foundation
import Logging
import SelfCalSupport

/// How long each solution interval is ("int", "inf", or N seconds).
public enum SolutionInterval: Sendable, Equatable, CustomStringConvertible {
    /// One solution per integration.
    case integration
    /// One solution per scan.
    case infinite
    /// Bins of this many seconds from the start of each scan.
    case seconds(Double)

    /// Parses "int", "inf", "120s", "120" or "2min".
    public init(parsing s: String) throws {
        let t = s.trimmingCharacters(in: .whitespaces).lowercased()
        switch t {
        case "int": self = .integration
        case "inf": self = .infinite
        default:
            var num = t
            var scale = 1.0
            if num.hasSuffix("min") { num.removeLast(3); scale = 60 } else if num.hasSuffix("s") { num.removeLast() }
            guard let v = Double(num), v > 0, v.isFinite else {
                throw PipelineError(.badConfig, "solution interval '\(s)' is not 'int', 'inf' or a positive duration like '60s'", context: "solint")
            }
            // A year is far longer than any scan; beyond it use "inf" (and no overflow later).
            guard v * scale <= Self.longest else {
                throw PipelineError(.badConfig, "solution interval '\(s)' is longer than a year; use \"inf\" for one solution per scan", context: "solint")
            }
            self = .seconds(v * scale)
        }
    }

    /// The longest interval in seconds a config may give (a year).
    static let longest = 365.25 * 86400

    public var description: String {
        switch self {
        case .integration: return "int"
        case .infinite: return "inf"
        case .seconds(let s): return s == s.rounded() ? "\(Int(s))s" : "\(s)s"
        }
    }
}

public enum CalMode: String, Sendable, CaseIterable {
    /// Phase only: |g| = 1.
    case p
    /// Amplitude and phase.
    case ap
}

/// What to solve for and how.
public struct SolveOptions: Sendable {
    public var calMode: CalMode = .p
    public var solint: SolutionInterval = .integration
    /// A name, an index, or "auto".
    public var refant: String = "auto"
    public var minSNR: Double = 3
    /// One solution over all spectral windows (written for each of them).
    public var combineSPW = false
    /// Tables applied to the data before solving (like gaincal's gaintable).
    public var preApply: [GainTable] = []
    public var maxIterations = 200
    public var tolerance = 1e-7

    public init() {}
}

/// Antenna-based diagonal gain solver (G Jones) of the StEFCal family (Salvini & Wijnholds 2014).
///
/// One pass over DATA and MODEL_DATA reduces each solution cell (interval × SPW × receptor) to
/// per-baseline sums A_pq = Σ w V conj(M), B_pq = Σ w |M|², C_pq = Σ w |V|²; the iterations then
/// work on those sums alone: g_p ← Σ_q A_pq g_q / Σ_q B_pq |g_q|².
public struct GainSolver: Sendable {
    public var options: SolveOptions
    public var logger: Logger

    public init(options: SolveOptions, logger: Logger = Logger(label: "selfcal.solve")) {
        self.options = options
        self.logger = logger
    }

    /// Sums for one solution cell, both receptors, one entry per baseline p < q
    /// (`Baselines.index`): A = Σ w V conj(M) (complex), B = Σ w |M|², the sample count N, and
    /// Σ w |V|² per receptor. Plain buffers, so the accumulation loop pays no exclusivity or
    /// uniqueness checks.
    final class Cell: @unchecked Sendable {
        let nant: Int
        let baselines: Int
        let a: UnsafeMutablePointer<Double>  // complex: 2 per entry, entry r * baselines + bl
        let b: UnsafeMutablePointer<Double>
        let n: UnsafeMutablePointer<Int32>
        var c: (Double, Double) = (0, 0)
        var timeSum = 0.0
        var rows = 0
        var times = Set<Double>()
        var lastTime = Double.nan
        var scan = 0, field = 0

        init(nant: Int) {
            self.nant = nant
            baselines = nant * (nant - 1) / 2
            a = .allocate(capacity: 2 * 2 * baselines)
            a.initialize(repeating: 0, count: 2 * 2 * baselines)
            b = .allocate(capacity: 2 * baselines)
            b.initialize(repeating: 0, count: 2 * baselines)
            n = .allocate(capacity: 2 * baselines)
            n.initialize(repeating: 0, count: 2 * baselines)
        }

        deinit {
            a.deallocate()
            b.deallocate()
            n.deallocate()
        }

        /// The entry of receptor r, baseline p < q.
        @inline(__always) func entry(_ r: Int, _ p: Int, _ q: Int) -> Int {
            r * baselines + p * nant - p * (p + 1) / 2 + (q - p - 1)
        }
    }

    struct CellKey: Hashable {
        var interval: Int
        var spw: Int  // -1 when SPWs are combined
    }

    /// One chunk in flight: what the I/O side reads and the accumulating side consumes.
    final class Slot: @unchecked Sendable {
        var v = VisibilityChunk(chunk: RowChunk(start: 0, count: 0, dataDescription: 0), channelCount: 0, correlationCount: 0)
        var model = [Float]()
        /// Set by a fused pass: this chunk's data now hold CORRECTED_DATA, to be written.
        var holdsCorrected = false
        var flagsChanged = false
    }

    /// The cells, filled by one thread at a time (the accumulating side of the pipeline).
    final class Accumulation: @unchecked Sendable {
        var cells: [CellKey: Cell] = [:]
    }

    /// Solves against MODEL_DATA; throws `.badInput` when there is nothing to solve on.
    ///
    /// One pass over DATA, MODEL_DATA, FLAG and WEIGHT; reading (casacore, one thread) overlaps
    /// the accumulation of the previous chunk (the other thread), and the cells are solved in
    /// parallel.
    public func solve(ms: MeasurementSet) throws -> GainTable {
        try run(ms: ms, apply: nil).table
    }

    /// What `solveAndApply` did.
    public struct SolveApplyResult: Sendable {
        public var table: GainTable
        /// Rows whose CORRECTED_DATA was written in the solving pass itself.
        public var fusedRows: Int
        /// Rows written by a second pass (`GainApplier`), for chunks the first could not finish.
        public var secondPassRows: Int
        public var newlyFlagged: Int
        /// Wall time of the second pass (0 when there was none).
        public var secondPassSeconds = 0.0
    }

    /// Solves, then writes CORRECTED_DATA = DATA corrected by `prior` tables and the new
    /// solutions — exactly what `solve` followed by `GainApplier(tables: prior + [table])` gives
    /// (the table rounded to the Float precision it is stored with), in as few passes as possible.
    ///
    /// When every solution interval holds one timestamp (solint `int`, or intervals no longer than
    /// an integration) each row's new gain is its own cell's solution, known as soon as the cell's
    /// last row has been read: chunks whose cells all end inside them (every chunk of a
    /// time-ordered MS) are corrected and written in the solving pass, so DATA is read once per
    /// round instead of twice. Other chunks (and every chunk for longer intervals, whose rows are
    /// interpolated between neighbouring solutions) are applied in a second pass over just them.
    public func solveAndApply(ms: MeasurementSet, prior: [GainTable] = []) throws -> SolveApplyResult {
        guard ms.isWritable else {
            throw PipelineError(.badInput, "the MS must be opened for writing to apply calibration", context: ms.path)
        }
        try ms.ensureDataColumn("CORRECTED_DATA")
        return try run(ms: ms, apply: prior)
    }

    /// The solving pass; with `apply` (prior tables, possibly none) it also applies.
    private func run(ms: MeasurementSet, apply prior: [GainTable]?) throws -> SolveApplyResult {
        try ms.table.requireColumn("DATA")
        try ms.table.requireColumn("MODEL_DATA", hint: "seed a model first, e.g. with `selfcal predict`")
        let nant = ms.antennas.count
        let refIndex = try resolveRefant(options.refant, antennas: ms.antennas)
        let rowIndex = try ms.rowIndex()
        let chunks = try ms.rowChunks()
        guard !chunks.isEmpty else { throw PipelineError(.badInput, "the MS has no rows", context: ms.path) }

        // Solution intervals from TIME and SCAN_NUMBER.
        let assign = try IntervalAssignment(ms: ms, solint: options.solint)
        let interp = options.preApply.isEmpty ? nil : GainInterpolator(tables: options.preApply)
        let acc = Accumulation()
        let opts = options
        let cellOf = CellKeyMap(assign: assign, dataDescription: rowIndex.dataDescription,
                              spwOfDD: ms.dataDescriptions.map(\.spectralWindow), combine: options.combineSPW)
        // Chunks whose cells all end inside them can be applied as soon as they are summed.
        let fusable: [Bool] = prior == nil || !assign.oneTimePerInterval
            ? Array(repeating: false, count: chunks.count)
            : Self.chunksCompleteAtTheirEnd(chunks, key: cellOf.key)
        let priorInterp = GainInterpolator(tables: prior ?? [])
        let fused = FusedState()
        let write: @Sendable (Int, Slot) throws -> Void = { _, slot in
            guard slot.holdsCorrected else { return }
            let v = slot.v
            try ms.writeData("CORRECTED_DATA", chunk: v.chunk, cellSize: v.cellSize, from: v.data)
            if slot.flagsChanged { try ms.writeFlags(chunk: v.chunk, cellSize: v.cellSize, v.flags) }
        }
        try pipelinedChunks(
            count: chunks.count, slots: [Slot(), Slot(), Slot()],
            read: { i, slot in
                let chunk = chunks[i]
                try ms.read(chunk, dataColumn: "DATA", extra: [.flags, .weights], into: &slot.v)
                try ms.readData("MODEL_DATA", chunk: chunk, cellSize: slot.v.cellSize, into: &slot.model)
            },
            process: { [self] i, slot in
                let (spw, pol) = try ms.setup(of: slot.v.chunk.dataDescription)
                Self.accumulate(slot, spw: spw.id, correlations: pol.correlations, nant: nant, options: opts,
                                assign: assign, fields: rowIndex.field, interp: interp, into: acc)
                slot.holdsCorrected = false
                if fusable[i] {
                    correctInPass(slot, spw: spw.id, receptors: pol.correlations.map(\.receptors), nant: nant, refIndex: refIndex,
                                  keys: cellOf, acc: acc, fused: fused, prior: priorInterp)
                }
            },
            write: prior == nil ? nil : write)
        try ms.table.release()
        let cells = acc.cells
        guard !cells.isEmpty else {
            throw PipelineError(.badInput, "no cross-correlation data to solve on (all rows are autocorrelations or flagged)", context: ms.path)
        }
        let totalSamples = cells.values.reduce(0) { t, cell in
            t + UnsafeBufferPointer(start: cell.n, count: 2 * cell.baselines).reduce(0) { $0 + Int($1) }
        }
        guard totalSamples > 0 else {
            throw PipelineError(.badInput, "all data are flagged (or have zero weight): nothing to solve on", context: ms.path)
        }
        if let refIndex {
            let refHasData = cells.values.contains { cell in
                (0..<2).contains { r in (0..<nant).contains { q in q != refIndex && cell.n[cell.entry(r, min(q, refIndex), max(q, refIndex))] > 0 } }
            }
            if !refHasData {
                logger.warning("reference antenna \(ms.antennas[refIndex].name) has no unflagged data; using the best-connected antenna per solution")
            }
        }

        let spwIDs = ms.spectralWindows.map(\.id)
        var solutions: [GainSolution] = []
        let keys = cells.keys.sorted { ($0.interval, $0.spw) < ($1.interval, $1.spw) }
        // Cells not solved during the pass are independent: solve them over the cores.
        let ordered = keys.map { cells[$0]! }
        let results = CellResults(count: ordered.count)
        let pending = (0..<ordered.count).filter { fused.solved[keys[$0]] == nil }
        for i in 0..<ordered.count { if let r = fused.solved[keys[i]] { results.store(i, r) } }
        let workers = max(1, min(pending.count, ProcessInfo.processInfo.activeProcessorCount))
        parallelFor(workers) { [self] w in
            var j = w
            while j < pending.count {
                let i = pending[j]
                results.store(i, solveCell(ordered[i], preference: Self.preference(refIndex, cell: ordered[i])))
                j += workers
            }
        }
        for (ki, key) in keys.enumerated() {
            let cell = ordered[ki]
            let (gains, perr, snr, flags, ref) = results.get(ki)
            let time = cell.times.reduce(0, +) / Double(cell.times.count)
            let span = assign.span(interval: key.interval)
            let spws = key.spw < 0 ? spwIDs : [key.spw]
            for s in spws {
                for a in 0..<nant {
                    solutions.append(GainSolution(
                        time: time, interval: options.solint == .integration ? 0 : span, field: cell.field, spectralWindow: s,
                        antenna: a, referenceAntenna: ref, scan: cell.scan, observation: 0,
                        gains: [gains[a], gains[nant + a]], paramErr: [perr[a], perr[nant + a]],
                        flags: [flags[a], flags[nant + a]], snr: [snr[a], snr[nant + a]]))
                }
            }
        }
        let flagged = solutions.reduce(0) { $0 + $1.flags.filter { $0 }.count }
        logger.info("solved \(keys.count) cells, \(solutions.count) solutions, \(flagged) of \(2 * solutions.count) flagged")
        let table = GainTable(solutions: solutions)
        var result = SolveApplyResult(table: table, fusedRows: fused.rows, secondPassRows: 0, newlyFlagged: fused.newlyFlagged)
        if let prior {
            let rest = zip(chunks, fusable).filter { !$1 }.map(\.0)
            if !rest.isEmpty {
                let t = Date()
                defer { result.secondPassSeconds = Date().timeIntervalSince(t) }
                let summary = try GainApplier(tables: prior + [table.roundedToStorage()], logger: logger).apply(to: ms, chunks: rest)
                result.secondPassRows = summary.rows
                result.newlyFlagged += summary.newlyFlagged
            }
            logger.info("applied \(prior.count + 1) table(s): \(result.fusedRows) rows in the solving pass, \(result.secondPassRows) in a second pass; \(result.newlyFlagged) samples newly flagged")
        }
        return result
    }

    /// The cell (interval, SPW or -1 when combined) of each row.
    struct CellKeyMap: Sendable {
        let assign: IntervalAssignment
        let dataDescription: [Int32]
        let spwOfDD: [Int]
        let combine: Bool

        func key(_ row: Int) -> CellKey {
            CellKey(interval: assign.interval(row: row), spw: combine ? -1 : spwOfDD[Int(dataDescription[row])])
        }
    }

    /// The fused step for one summed chunk whose cells are complete: solves those cells, then
    /// corrects the chunk's DATA in place (prior tables × the new solution of each row's cell),
    /// marking it to be written as CORRECTED_DATA.
    func correctInPass(_ slot: Slot, spw: Int, receptors: [(Int, Int)], nant: Int, refIndex: Int?,
                       keys: CellKeyMap, acc: Accumulation, fused: FusedState, prior: GainInterpolator) {
        let chunk = slot.v.chunk
        let end = chunk.start + chunk.count
        var r = chunk.start
        while r < end {
            let k = keys.key(r)
            if fused.solved[k] == nil, let cell = acc.cells[k] {
                fused.solved[k] = solveCell(cell, preference: Self.preference(refIndex, cell: cell))
            }
            while r < end && keys.key(r) == k { r += 1 }
        }
        let gains: (Int, Double) -> [SIMD2<Double>?] = { row, time in
            let own: CellResults.Result? = fused.solved[keys.key(row)]
            var out = [SIMD2<Double>?](repeating: nil, count: 2 * nant)
            guard let own else { return out }
            for a in 0..<nant {
                for rec in 0..<2 where !own.3[rec * nant + a] {
                    guard var g = prior.gain(spw: spw, antenna: a, receptor: rec, time: time) else { continue }
                    // Rounded as CPARAM stores it: what a later apply of the table would use.
                    let h = GainTable.storagePrecision(own.0[rec * nant + a])
                    g = SIMD2(g.x * h.x - g.y * h.y, g.x * h.y + g.y * h.x)
                    out[a * 2 + rec] = g
                }
            }
            return out
        }
        let flagged = GainApplier.correct(&slot.v, receptors: receptors, nant: nant, gains: gains)
        slot.flagsChanged = flagged > 0
        slot.holdsCorrected = true
        fused.newlyFlagged += flagged
        fused.rows += chunk.count
    }

    /// Cells solved during a fused pass (by the processing thread only) and its counts.
    final class FusedState: @unchecked Sendable {
        var solved: [CellKey: CellResults.Result] = [:]
        var rows = 0
        var newlyFlagged = 0
    }

    /// For each chunk: do all cells of its rows have their last row inside it? (Then the chunk
    /// can be applied right after it has been summed.)
    static func chunksCompleteAtTheirEnd(_ chunks: [RowChunk], key: (Int) -> CellKey) -> [Bool] {
        var lastRow: [CellKey: Int] = [:]
        for c in chunks {
            var r = c.start
            while r < c.start + c.count {
                let k = key(r)
                while r < c.start + c.count && key(r) == k { r += 1 }
                lastRow[k] = max(lastRow[k] ?? -1, r - 1)
            }
        }
        return chunks.map { c in
            var r = c.start
            while r < c.start + c.count {
                let k = key(r)
                if lastRow[k]! >= c.start + c.count { return false }
                while r < c.start + c.count && key(r) == k { r += 1 }
            }
            return true
        }
    }

    /// Reference preference for one cell: the requested antenna, then the antennas with the
    /// most samples in this cell (ties: lower index). Decided per cell so that a cell solved
    /// during the pass and one solved after it are referenced alike.
    static func preference(_ refIndex: Int?, cell: Cell) -> [Int] {
        var perAnt = [Int](repeating: 0, count: cell.nant)
        for r in 0..<2 {
            for p in 0..<cell.nant {
                for q in (p + 1)..<max(p + 1, cell.nant) {
                    let k = Int(cell.n[cell.entry(r, p, q)])
                    perAnt[p] += k; perAnt[q] += k
                }
            }
        }
        let byData = (0..<cell.nant).sorted { perAnt[$0] != perAnt[$1] ? perAnt[$0] > perAnt[$1] : $0 < $1 }
        return (refIndex.map { [$0] } ?? []) + byData.filter { $0 != refIndex }
    }

    /// Adds one chunk's samples to the sums of their cells. Rows of one cell come in runs, so the
    /// cell is looked up only when the (interval, SPW) changes.
    /// `fields`: FIELD_ID of every row of the MS (`RowIndex.field`).
    static func accumulate(_ slot: Slot, spw: Int, correlations: [Correlation], nant: Int, options: SolveOptions,
                           assign: IntervalAssignment, fields: [Int32], interp: GainInterpolator?, into acc: Accumulation) {
        let v = slot.v
        let hands: [(pol: Int, receptor: Int)] = correlations.enumerated().compactMap { i, c in
            c.isParallelHand ? (i, c.receptors.0) : nil
        }
        let npol = v.correlationCount, nchan = v.channelCount, cs = v.cellSize
        let phaseOnly = options.calMode == .p
        // The common layout (two parallel hands, receptor 0 then 1) takes the vectorised path.
        let twoHands = npol == 2 && hands.count == 2 && hands[0] == (0, 0) && hands[1] == (1, 1)
        // Pre-applied gains per unique time in the chunk.
        var preGains: [Double: [SIMD2<Double>?]] = [:]
        var lastKey: CellKey?
        var cell: Cell?
        v.data.withUnsafeBufferPointer { dataB in
        slot.model.withUnsafeBufferPointer { modelB in
        v.flags.withUnsafeBufferPointer { flagB in
        v.weights.withUnsafeBufferPointer { weightB in
            let data = dataB.baseAddress!, model = modelB.baseAddress!
            let flags = flagB.baseAddress!, weights = weightB.baseAddress!
            let perChannel = v.weightsPerChannel
            for row in 0..<v.rowCount {
                let p = Int(v.antenna1[row]), q = Int(v.antenna2[row])
                if p == q || v.flagRow[row] || p < 0 || q < 0 || p >= nant || q >= nant { continue }
                let key = CellKey(interval: assign.interval(row: v.chunk.start + row), spw: options.combineSPW ? -1 : spw)
                if key != lastKey || cell == nil {
                    if let c = acc.cells[key] {
                        cell = c
                    } else {
                        let c = Cell(nant: nant)
                        c.scan = assign.scan(row: v.chunk.start + row)
                        acc.cells[key] = c
                        cell = c
                    }
                    lastKey = key
                }
                let cell = cell!
                cell.field = Int(fields[v.chunk.start + row])
                let t = v.time[row]
                if t != cell.lastTime {
                    cell.times.insert(t)
                    cell.lastTime = t
                }
                cell.timeSum += t
                cell.rows += 1
                var pre: [SIMD2<Double>?]? = nil
                if let interp {
                    if preGains[t] == nil {
                        preGains[t] = (0..<(nant * 2)).map { interp.gain(spw: spw, antenna: $0 / 2, receptor: $0 % 2, time: t) }
                    }
                    pre = preGains[t]
                }
                let (lo, hi, swap) = p < q ? (p, q, false) : (q, p, true)
                if twoHands && pre == nil {
                    // Both hands at once, four channels per step (see `rowSums`).
                    let s = rowSums(data: data + 2 * row * cs, model: model + 2 * row * cs, flags: flags + row * cs,
                                    weights: weights + row * (perChannel ? cs : npol), perChannel: perChannel,
                                    channels: nchan, phaseOnly: phaseOnly)
                    for r in 0..<2 {
                        let idx = cell.entry(r, lo, hi)
                        cell.a[2 * idx] += s.re[r]
                        cell.a[2 * idx + 1] += swap ? -s.im[r] : s.im[r]
                        cell.b[idx] += s.b[r]
                        cell.n[idx] += s.n[r]
                    }
                    cell.c.0 += s.c[0]
                    cell.c.1 += s.c[1]
                    continue
                }
                for h in hands {
                    var gpi = SIMD2<Double>(1, 0), gqi = SIMD2<Double>(1, 0)  // inverse pre-applied gains
                    var wScale = 1.0
                    if let pre {
                        guard let gp = pre[p * 2 + h.receptor], let gq = pre[q * 2 + h.receptor] else { continue }
                        let np = (gp * gp).sum(), nq = (gq * gq).sum()
                        gpi = SIMD2(gp.x / np, -gp.y / np)
                        gqi = SIMD2(gq.x / nq, -gq.y / nq)
                        wScale = np * nq
                    }
                    // corrected V' = V · (1/g_p) · conj(1/g_q)
                    let fr = gpi.x * gqi.x + gpi.y * gqi.y, fi = gpi.y * gqi.x - gpi.x * gqi.y
                    let rotate = pre != nil
                    var sar = 0.0, sai = 0.0, sb = 0.0, sc = 0.0
                    var cnt: Int32 = 0
                    var k = row * cs + h.pol
                    for _ in 0..<nchan {
                        defer { k += npol }
                        if flags[k] != 0 { continue }
                        let w = Double(perChannel ? weights[k] : weights[row * npol + h.pol]) * wScale
                        if !(w > 0) { continue }
                        var vr = Double(data[2 * k]), vi = Double(data[2 * k + 1])
                        if rotate { (vr, vi) = (vr * fr - vi * fi, vr * fi + vi * fr) }
                        guard let t = sampleTerms(vr, vi, Double(model[2 * k]), Double(model[2 * k + 1]), weight: w,
                                                  phaseOnly: phaseOnly) else { continue }
                        sar += t.re
                        sai += t.im
                        sb += t.b
                        sc += t.c
                        cnt += 1
                    }
                    // The (q, p) row as seen from (p, q) is the conjugate: only Im(A) changes sign.
                    if swap { sai = -sai }
                    let idx = cell.entry(h.receptor, lo, hi)
                    cell.a[2 * idx] += sar
                    cell.a[2 * idx + 1] += sai
                    cell.b[idx] += sb
                    cell.n[idx] += cnt
                    if h.receptor == 0 { cell.c.0 += sc } else { cell.c.1 += sc }
                }
            }
        } } } }
    }

    /// One sample's terms w V conj(M) (re, im), w |M|² and w |V|². For phase-only solves V is first
    /// scaled to |M|, like CASA for calmode p: only the phase of V/M counts, so every baseline
    /// weighs by the model, not by uncalibrated amplitudes (nil when V = 0: no phase).
    @inline(__always)
    static func sampleTerms(_ vr: Double, _ vi: Double, _ mr: Double, _ mi: Double, weight w: Double,
                            phaseOnly: Bool) -> (re: Double, im: Double, b: Double, c: Double)? {
        var vr = vr, vi = vi
        let m2 = mr * mr + mi * mi
        if phaseOnly {
            let v2 = vr * vr + vi * vi
            guard v2 > 0 else { return nil }
            let scale = (m2 / v2).squareRoot()
            vr *= scale; vi *= scale
        }
        return (w * (vr * mr + vi * mi), w * (vi * mr - vr * mi), w * m2, w * (vr * vr + vi * vi))
    }

    /// One row's sums for two correlations (receptor 0, then 1) stored as (re, im) pairs with the
    /// two correlations of a channel adjacent: A = Σ w V conj(M), B = Σ w |M|², C = Σ w |V|² and
    /// the count of samples used. For phase-only solves V is first scaled to |M| (as in the scalar
    /// path). `weights` holds the row's per-visibility weights (`perChannel`) or its two per-row
    /// weights. Four channels (16 floats of data) per step; the lanes of the SIMD8 sums alternate
    /// receptor 0, 1. Float arithmetic within the row (at most a few thousand terms), Double across
    /// rows: relative rounding about 1e-7, far below the noise of any one sample.
    @inline(__always)
    static func rowSums(data: UnsafePointer<Float>, model: UnsafePointer<Float>, flags: UnsafePointer<UInt8>,
                        weights: UnsafePointer<Float>, perChannel: Bool, channels nchan: Int, phaseOnly: Bool)
        -> (re: SIMD2<Double>, im: SIMD2<Double>, b: SIMD2<Double>, c: SIMD2<Double>, n: SIMD2<Int32>) {
        var accRe = SIMD8<Float>(), accIm = SIMD8<Float>(), accB = SIMD8<Float>(), accC = SIMD8<Float>()
        var accN = SIMD8<Int32>()
        let steps = nchan / 4
        let dRaw = UnsafeRawPointer(data), mRaw = UnsafeRawPointer(model)
        let fRaw = UnsafeRawPointer(flags), wRaw = UnsafeRawPointer(weights)
        // Weights per row (WEIGHT): the two correlations' weights, repeated for four channels.
        let rowWeights = perChannel ? SIMD8<Float>() : SIMD8(weights[0], weights[1], weights[0], weights[1],
                                                             weights[0], weights[1], weights[0], weights[1])
        for step in 0..<steps {
            let d = dRaw.loadUnaligned(fromByteOffset: step * 64, as: SIMD16<Float>.self)
            let m = mRaw.loadUnaligned(fromByteOffset: step * 64, as: SIMD16<Float>.self)
            let flagBits = fRaw.loadUnaligned(fromByteOffset: step * 8, as: UInt64.self)
            let w = perChannel ? wRaw.loadUnaligned(fromByteOffset: step * 32, as: SIMD8<Float>.self) : rowWeights
            let vr = d.evenHalf, vi = d.oddHalf, mr = m.evenHalf, mi = m.oddHalf
            let re = vr * mr + vi * mi
            let im = vi * mr - vr * mi
            let m2 = mr * mr + mi * mi
            let v2 = vr * vr + vi * vi
            var use = w .> 0
            if flagBits != 0 {
                // Some of the 8 samples are flagged (rare): clear their lanes. Widening the bytes
                // to a mask with SIMD conversions compiles to a lane-by-lane loop, so test the
                // 8 bytes as one word and only then look at them.
                for lane in 0..<8 where flags[8 * step + lane] != 0 { use[lane] = false }
            }
            if phaseOnly { use = use .& (v2 .> 0) }
            let wu = SIMD8<Float>(repeating: 0).replacing(with: w, where: use)
            accN &+= SIMD8<Int32>(repeating: 0).replacing(with: 1, where: use)
            if phaseOnly {
                // V' = V |M|/|V|: Re, Im scale by sqrt(m2 / v2); |V'|² = |M|².
                let ratio = SIMD8<Float>(repeating: 0).replacing(with: m2 / v2, where: use)
                let sw = wu * ratio.squareRoot()
                accRe += sw * re
                accIm += sw * im
                accB += wu * m2
                accC += wu * m2
            } else {
                accRe += wu * re
                accIm += wu * im
                accB += wu * m2
                accC += wu * v2
            }
        }
        func split(_ x: SIMD8<Float>) -> SIMD2<Double> { SIMD2(Double(x.evenHalf.sum()), Double(x.oddHalf.sum())) }
        var re = split(accRe), im = split(accIm), b = split(accB), c = split(accC)
        var n = SIMD2(accN.evenHalf.wrappedSum(), accN.oddHalf.wrappedSum())
        // The channels left over (fewer than four), in Double as in the scalar path.
        for ch in (4 * steps)..<nchan {
            for r in 0..<2 {
                let k = 2 * ch + r
                let w = Double(perChannel ? weights[k] : weights[r])
                guard flags[k] == 0, w > 0 else { continue }
                guard let t = sampleTerms(Double(data[2 * k]), Double(data[2 * k + 1]), Double(model[2 * k]),
                                          Double(model[2 * k + 1]), weight: w, phaseOnly: phaseOnly) else { continue }
                re[r] += t.re
                im[r] += t.im
                b[r] += t.b
                c[r] += t.c
                n[r] += 1
            }
        }
        return (re, im, b, c, n)
    }

    /// Per-cell results written by several threads, each to its own index.
    final class CellResults: @unchecked Sendable {
        typealias Result = ([SIMD2<Double>], [Float], [Float], [Bool], Int)
        private let items: UnsafeMutablePointer<Result?>
        private let count: Int

        init(count: Int) {
            self.count = count
            items = .allocate(capacity: count)
            items.initialize(repeating: nil, count: count)
        }

        deinit {
            items.deinitialize(count: count)
            items.deallocate()
        }

        func store(_ i: Int, _ r: Result) { items[i] = r }
        func get(_ i: Int) -> Result { items[i]! }
    }

    /// StEFCal on one cell's sums, for both receptors; referenced to the first preferred antenna
    /// with data. Returns gains, errors, SNR, flags ([receptor * nant + antenna]) and the refant.
    ///
    /// The sums are unpacked into dense Hermitian matrices over the antennas with data (zero
    /// diagonal), real and imaginary parts apart, so that each update g_p ← Σ_q A_pq g_q / Σ_q
    /// B_pq |g_q|² is a contiguous row sweep that runs four antennas per step.
    func solveCell(_ cell: Cell, preference: [Int]) -> ([SIMD2<Double>], [Float], [Float], [Bool], Int) {
        let nant = cell.nant
        let phaseOnly = options.calMode == .p
        var gains = [SIMD2<Double>](repeating: SIMD2(1, 0), count: 2 * nant)
        var perr = [Float](repeating: 0, count: 2 * nant)
        var snr = [Float](repeating: 0, count: 2 * nant)
        var flags = [Bool](repeating: true, count: 2 * nant)
        var refUsed = preference.first ?? 0
        for r in 0..<2 {
            // Antennas with data (some B_pq > 0) and the sample count over all baselines.
            var hasData = [Bool](repeating: false, count: nant)
            var N = 0
            for p in 0..<nant {
                for q in (p + 1)..<max(p + 1, nant) {
                    let idx = cell.entry(r, p, q)
                    guard cell.n[idx] > 0 else { continue }
                    N += Int(cell.n[idx])
                    if cell.b[idx] > 0 { hasData[p] = true; hasData[q] = true }
                }
            }
            let active = (0..<nant).filter { hasData[$0] }
            let na = active.count
            guard na >= 2 else { continue }
            var are = [Double](repeating: 0, count: na * na)
            var aim = [Double](repeating: 0, count: na * na)
            var bm = [Double](repeating: 0, count: na * na)
            for i in 0..<na {
                for j in (i + 1)..<na {
                    let idx = cell.entry(r, active[i], active[j])
                    guard cell.n[idx] > 0 else { continue }
                    let ar = cell.a[2 * idx], ai = cell.a[2 * idx + 1], b = cell.b[idx]
                    are[i * na + j] = ar; aim[i * na + j] = ai
                    are[j * na + i] = ar; aim[j * na + i] = -ai
                    bm[i * na + j] = b; bm[j * na + i] = b
                }
            }
            let C = r == 0 ? cell.c.0 : cell.c.1
            var gr = [Double](repeating: 1, count: na), gi = [Double](repeating: 0, count: na)
            var g2 = [Double](repeating: 1, count: na)
            var nr = gr, ni = gi
            for iter in 0..<options.maxIterations {
                for i in 0..<na { g2[i] = gr[i] * gr[i] + gi[i] * gi[i] }
                for p in 0..<na {
                    let (sr, si, den) = Self.rowProduct(are: are, aim: aim, b: bm, row: p, n: na, gr: gr, gi: gi, g2: g2)
                    guard den > 0 else { nr[p] = gr[p]; ni[p] = gi[p]; continue }
                    var xr = sr / den, xi = si / den
                    if phaseOnly {
                        let m = (xr * xr + xi * xi).squareRoot()
                        (xr, xi) = m > 0 ? (xr / m, xi / m) : (1, 0)
                    }
                    nr[p] = xr; ni[p] = xi
                }
                // StEFCal's averaging on even iterations damps the oscillation.
                if iter % 2 == 1 {
                    for p in 0..<na {
                        var xr = (nr[p] + gr[p]) / 2, xi = (ni[p] + gi[p]) / 2
                        if phaseOnly {
                            let m = (xr * xr + xi * xi).squareRoot()
                            (xr, xi) = m > 0 ? (xr / m, xi / m) : (1, 0)
                        }
                        nr[p] = xr; ni[p] = xi
                    }
                }
                var maxChange = 0.0
                for p in 0..<na {
                    let dr = nr[p] - gr[p], di = ni[p] - gi[p]
                    let norm = max(1e-30, (nr[p] * nr[p] + ni[p] * ni[p]).squareRoot())
                    maxChange = max(maxChange, (dr * dr + di * di).squareRoot() / norm)
                }
                swap(&gr, &nr)
                swap(&gi, &ni)
                if maxChange < options.tolerance && iter > 1 { break }
            }
            // Phase reference: first preferred antenna with data for this receptor.
            let ref = preference.first { hasData[$0] } ?? active[0]
            if r == 0 { refUsed = ref }
            let ri = active.firstIndex(of: ref)!
            let gm = (gr[ri] * gr[ri] + gi[ri] * gi[ri]).squareRoot()
            let (cr, ci) = gm > 0 ? (gr[ri] / gm, -gi[ri] / gm) : (1.0, 0.0)
            for p in 0..<na {
                (gr[p], gi[p]) = (gr[p] * cr - gi[p] * ci, gr[p] * ci + gi[p] * cr)
                g2[p] = gr[p] * gr[p] + gi[p] * gi[p]
            }
            // Noise per unit weight from the residual χ² = Σ C − 2 Re(g_p conj(g_q) conj(A_pq)) + |g_p|²|g_q|² B_pq.
            var chi2 = C
            for p in 0..<na {
                for q in (p + 1)..<na {
                    let xr = gr[p] * gr[q] + gi[p] * gi[q], xi = gi[p] * gr[q] - gr[p] * gi[q]  // g_p conj(g_q)
                    chi2 -= 2 * (xr * are[p * na + q] + xi * aim[p * na + q])
                    chi2 += g2[p] * g2[q] * bm[p * na + q]
                }
            }
            let dof = max(1, 2 * N - 2 * na)
            let sigma2 = max(chi2, 0) / Double(dof)
            for p in 0..<na {
                var info = 0.0
                for q in 0..<na { info += bm[p * na + q] * g2[q] }
                let err = info > 0 ? (sigma2 / info).squareRoot() : .infinity
                let amp = g2[p].squareRoot()
                let s = err > 0 ? amp / err : 1e6
                let a = active[p]
                gains[r * nant + a] = SIMD2(gr[p], gi[p])
                perr[r * nant + a] = Float(err)
                snr[r * nant + a] = Float(min(s, 1e6))
                flags[r * nant + a] = !(s >= options.minSNR)
            }
        }
        return (gains, perr, snr, flags, refUsed)
    }

    /// Row p of the StEFCal update: (Σ_q A_pq g_q, Σ_q B_pq |g_q|²) over n antennas, four per
    /// step (the diagonal is zero).
    @inline(__always)
    static func rowProduct(are: [Double], aim: [Double], b: [Double], row p: Int, n: Int,
                           gr: [Double], gi: [Double], g2: [Double]) -> (Double, Double, Double) {
        are.withUnsafeBufferPointer { are in aim.withUnsafeBufferPointer { aim in b.withUnsafeBufferPointer { b in
        gr.withUnsafeBufferPointer { gr in gi.withUnsafeBufferPointer { gi in g2.withUnsafeBufferPointer { g2 in
            let ar = UnsafeRawPointer(are.baseAddress! + p * n), ai = UnsafeRawPointer(aim.baseAddress! + p * n)
            let bb = UnsafeRawPointer(b.baseAddress! + p * n)
            let xr = UnsafeRawPointer(gr.baseAddress!), xi = UnsafeRawPointer(gi.baseAddress!), x2 = UnsafeRawPointer(g2.baseAddress!)
            var sr = SIMD4<Double>(), si = SIMD4<Double>(), sd = SIMD4<Double>()
            let steps = n / 4
            for k in 0..<steps {
                let o = k * 32
                let a = ar.loadUnaligned(fromByteOffset: o, as: SIMD4<Double>.self)
                let c = ai.loadUnaligned(fromByteOffset: o, as: SIMD4<Double>.self)
                let u = xr.loadUnaligned(fromByteOffset: o, as: SIMD4<Double>.self)
                let v = xi.loadUnaligned(fromByteOffset: o, as: SIMD4<Double>.self)
                sr += a * u - c * v
                si += a * v + c * u
                sd += bb.loadUnaligned(fromByteOffset: o, as: SIMD4<Double>.self) * x2.loadUnaligned(fromByteOffset: o, as: SIMD4<Double>.self)
            }
            var r = sr.sum(), i = si.sum(), d = sd.sum()
            for q in (4 * steps)..<n {
                let a = are[p * n + q], c = aim[p * n + q]
                r += a * gr[q] - c * gi[q]
                i += a * gi[q] + c * gr[q]
                d += b[p * n + q] * g2[q]
            }
            return (r, i, d)
        } } } } } }
    }
}

/// Resolves a reference antenna given by name, index or "auto" (nil).
func resolveRefant(_ s: String, antennas: [Antenna]) throws -> Int? {
    let t = s.trimmingCharacters(in: .whitespaces)
    if t.lowercased() == "auto" || t.isEmpty { return nil }
    if let i = antennas.firstIndex(where: { $0.name == t }) { return i }
    if let i = Int(t), i >= 0, i < antennas.count { return i }
    let names = antennas.prefix(6).map(\.name).joined(separator: ", ")
    throw PipelineError(.badConfig, "unknown reference antenna '\(t)': give a name (\(names), ...), an index 0..<\(antennas.count), or auto", context: "refant")
}

/// Which solution interval each row belongs to.
struct IntervalAssignment {
    private var rowInterval: [Int32]
    private var rowScan: [Int32]
    private var spans: [Double]
    /// Every interval holds a single timestamp (solint `int`, or intervals within an integration).
    private(set) var oneTimePerInterval = true

    init(ms: MeasurementSet, solint: SolutionInterval) throws {
        let idx = try ms.rowIndex()
        let n = idx.count
        let time = idx.time
        let scans = idx.scan
        let exposure = [idx.firstInterval]
        var scanStart: [Int32: Double] = [:]
        for i in 0..<n { scanStart[scans[i]] = min(scanStart[scans[i]] ?? .infinity, time[i]) }
        struct Key: Hashable { var scan: Int32; var bin: Int64 }
        var index: [Key: Int32] = [:]
        var minT: [Double] = [], maxT: [Double] = []
        rowInterval = [Int32](repeating: 0, count: n)
        rowScan = scans
        for i in 0..<n {
            let bin: Int64
            switch solint {
            case .integration: bin = Int64((time[i] * 1000).rounded())
            case .infinite: bin = 0
            case .seconds(let s): bin = Int64(((time[i] - scanStart[scans[i]]!) / s).rounded(.down))
            }
            let k = Key(scan: scans[i], bin: bin)
            if let j = index[k] {
                rowInterval[i] = j
                minT[Int(j)] = min(minT[Int(j)], time[i])
                maxT[Int(j)] = max(maxT[Int(j)], time[i])
            } else {
                let j = Int32(index.count)
                index[k] = j
                rowInterval[i] = j
                minT.append(time[i]); maxT.append(time[i])
            }
        }
        let dt = exposure.first ?? 0
        spans = zip(minT, maxT).map { $1 - $0 + dt }
        oneTimePerInterval = zip(minT, maxT).allSatisfy { $0 == $1 }
    }

    func interval(row: Int) -> Int { Int(rowInterval[row]) }
    func scan(row: Int) -> Int { Int(rowScan[row]) }
    func span(interval: Int) -> Double { spans[interval] }
}
