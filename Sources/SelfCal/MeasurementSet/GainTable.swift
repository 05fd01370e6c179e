import CCasacore
import Foundation
import SelfCalSupport

/// One antenna's solution in one solution interval and spectral window ("G Jones": one complex
/// gain per receptor). Convention: V_pq = g_p · M_pq · conj(g_q), p = ANTENNA1.
public struct GainSolution: Sendable, Equatable {
    public var time: Double
    public var interval: Double
    public var field: Int
    public var spectralWindow: Int
    public var antenna: Int
    public var referenceAntenna: Int
    public var scan: Int
    public var observation: Int
    /// Per receptor (2): the complex gain.
    public var gains: [SIMD2<Double>]
    public var paramErr: [Float]
    public var flags: [Bool]
    public var snr: [Float]
}

/// A set of gain solutions: what `solve` produces, `apply` consumes, and CASA reads as a
/// calibration table of type "G Jones".
public struct GainTable: Sendable {
    public var solutions: [GainSolution]

    public init(solutions: [GainSolution]) { self.solutions = solutions }

    /// Writes the table in CASA's own layout (see CASA-CALTABLE.md), with the MS's ANTENNA,
    /// FIELD, SPECTRAL_WINDOW and OBSERVATION copied in. Written to a temporary name and renamed,
    /// so a failure leaves nothing behind.
    public func write(to path: String, msPath: String) throws {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw PipelineError(.badConfig, "calibration table already exists (remove it or choose another name)", context: path)
        }
        let tmp = path + ".tmp-\(getpid())"
        try? FileManager.default.removeItem(atPath: tmp)
        let n = solutions.count, npol = 2, nchan = 1
        var time = [Double](), interval = [Double](), field = [Int32](), spw = [Int32](), a1 = [Int32](), a2 = [Int32]()
        var scan = [Int32](), obs = [Int32](), cparam = [Float](), perr = [Float](), flag = [UInt8](), snr = [Float]()
        for s in solutions {
            time.append(s.time); interval.append(s.interval); field.append(Int32(s.field)); spw.append(Int32(s.spectralWindow))
            a1.append(Int32(s.antenna)); a2.append(Int32(s.referenceAntenna)); scan.append(Int32(s.scan)); obs.append(Int32(s.observation))
            for r in 0..<npol {
                cparam.append(Float(s.gains[r].x)); cparam.append(Float(s.gains[r].y))
                perr.append(s.paramErr[r]); flag.append(s.flags[r] ? 1 : 0); snr.append(s.snr[r])
            }
        }
        var err = ErrorBuffer()
        let rc: Int32 = time.withUnsafeBufferPointer { tP in interval.withUnsafeBufferPointer { iP in
            field.withUnsafeBufferPointer { fP in spw.withUnsafeBufferPointer { sP in
                a1.withUnsafeBufferPointer { a1P in a2.withUnsafeBufferPointer { a2P in
                    scan.withUnsafeBufferPointer { scP in obs.withUnsafeBufferPointer { oP in
                        cparam.withUnsafeBufferPointer { cP in perr.withUnsafeBufferPointer { pP in
                            flag.withUnsafeBufferPointer { flP in snr.withUnsafeBufferPointer { snP in
                                "G Jones".withCString { visCal in
                                    (msPath as NSString).lastPathComponent.withCString { msName in
                                        var spec = ccasa_caltable_spec(
                                            nrows: Int64(n), npol: Int32(npol), nchan: Int32(nchan),
                                            time: tP.baseAddress, interval: iP.baseAddress, field_id: fP.baseAddress,
                                            spw_id: sP.baseAddress, antenna1: a1P.baseAddress, antenna2: a2P.baseAddress,
                                            scan: scP.baseAddress, obs_id: oP.baseAddress, cparam: cP.baseAddress,
                                            paramerr: pP.baseAddress, flag: flP.baseAddress, snr: snP.baseAddress,
                                            ms_name: msName, vis_cal: visCal)
                                        return err.call { ccasa_caltable_write(tmp, msPath, &spec, $0, $1) }
                                    }
                                }
                            } }
                        } }
                    } }
                } }
            } }
        } }
        if rc != 0 {
            try? FileManager.default.removeItem(atPath: tmp)
            throw PipelineError(.badInput, err.message, context: path)
        }
        do {
            try FileManager.default.moveItem(atPath: tmp, toPath: path)
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            throw PipelineError(.badInput, "could not rename the finished table: \(error)", context: path)
        }
    }

    /// A gain as CPARAM stores it (single-precision complex).
    @inline(__always) static func storagePrecision(_ g: SIMD2<Double>) -> SIMD2<Double> {
        SIMD2(Double(Float(g.x)), Double(Float(g.y)))
    }

    /// The table as it reads back once written: gains in single precision. Applying it from
    /// memory then gives what applying the written table gives.
    public func roundedToStorage() -> GainTable {
        var t = self
        for i in t.solutions.indices { t.solutions[i].gains = t.solutions[i].gains.map(Self.storagePrecision) }
        return t
    }

    /// Reads a "G Jones" table (ours or CASA's).
    public static func read(path: String) throws -> GainTable {
        let t = try CasaTable(path: path)
        for col in ["TIME", "ANTENNA1", "SPECTRAL_WINDOW_ID", "CPARAM", "FLAG"] {
            try t.requireColumn(col, hint: "is this a CASA gain table?")
        }
        let n = t.rowCount
        if n == 0 { return GainTable(solutions: []) }
        let shape = try t.cellShape("CPARAM", row: 0)
        let cs = shape.reduce(1, *)
        guard shape.count == 2, shape[0] >= 1 else {
            throw PipelineError(.badInput, "CPARAM cells have shape \(shape), expected [npol, nchan]", context: path)
        }
        let npol = shape[0]
        // Columns are read one after the other: a cache that holds the table's buckets reads each
        // from the file once (CASA's tables and ours keep every column in one StandardStMan).
        _ = try? t.setStandardStManCache("TIME", buckets: min(65536, n / 16 + 16))
        let time = try t.doubles("TIME"), ant = try t.ints("ANTENNA1"), spw = try t.ints("SPECTRAL_WINDOW_ID")
        let ref = t.hasColumn("ANTENNA2") ? try t.ints("ANTENNA2") : Array(repeating: -1, count: n)
        let interval = t.hasColumn("INTERVAL") ? try t.doubles("INTERVAL") : Array(repeating: 0, count: n)
        let field = t.hasColumn("FIELD_ID") ? try t.ints("FIELD_ID") : Array(repeating: 0, count: n)
        let scan = t.hasColumn("SCAN_NUMBER") ? try t.ints("SCAN_NUMBER") : Array(repeating: 0, count: n)
        var cp = [Float](repeating: 0, count: 2 * n * cs)
        var fl = [UInt8](repeating: 0, count: n * cs)
        var snr = [Float](repeating: 0, count: n * cs)
        try cp.withUnsafeMutableBufferPointer { try t.readComplex("CPARAM", start: 0, count: n, cellSize: cs, into: $0) }
        try fl.withUnsafeMutableBufferPointer { try t.readFlags("FLAG", start: 0, count: n, cellSize: cs, into: $0) }
        if t.hasColumn("SNR") {
            try snr.withUnsafeMutableBufferPointer { try t.readFloats("SNR", start: 0, count: n, cellSize: cs, into: $0) }
        }
        var sols: [GainSolution] = []
        sols.reserveCapacity(n)
        for r in 0..<n {
            // Channel 0 of each receptor; a single-receptor table applies to both hands.
            let g = (0..<2).map { k -> SIMD2<Double> in
                let p = min(k, npol - 1)
                return SIMD2(Double(cp[2 * (r * cs + p)]), Double(cp[2 * (r * cs + p) + 1]))
            }
            let f = (0..<2).map { fl[r * cs + min($0, npol - 1)] != 0 }
            let s = (0..<2).map { snr[r * cs + min($0, npol - 1)] }
            sols.append(GainSolution(time: time[r], interval: interval[r], field: Int(field[r]), spectralWindow: Int(spw[r]),
                                     antenna: Int(ant[r]), referenceAntenna: Int(ref[r]), scan: Int(scan[r]), observation: 0,
                                     gains: g, paramErr: [0, 0], flags: f, snr: s))
        }
        return GainTable(solutions: sols)
    }
}

/// Looks up gains at any time from one or more tables: linear in amplitude and phase between
/// neighbouring unflagged solutions, nearest beyond the ends; a sample whose nearest solution
/// is flagged is flagged.
public struct GainInterpolator: Sendable {
    struct Series: Sendable {
        var times: [Double]
        var gains: [SIMD2<Double>]
        var flags: [Bool]
    }
    /// Keyed by table index, spw, antenna, receptor.
    private var series: [[Int: Series]]
    public let tableCount: Int

    static func key(spw: Int, antenna: Int, receptor: Int) -> Int { (spw * 100_000 + antenna) * 2 + receptor }

    public init(tables: [GainTable]) {
        tableCount = tables.count
        series = tables.map { table in
            var d: [Int: Series] = [:]
            for s in table.solutions.sorted(by: { $0.time < $1.time }) {
                for r in 0..<2 {
                    let k = Self.key(spw: s.spectralWindow, antenna: s.antenna, receptor: r)
                    d[k, default: Series(times: [], gains: [], flags: [])].times.append(s.time)
                    d[k]!.gains.append(s.gains[r])
                    d[k]!.flags.append(s.flags[r])
                }
            }
            return d
        }
    }

    /// The product of every table's gain for (spw, antenna, receptor) at `time`; nil when flagged
    /// or when some table has no solution for it.
    public func gain(spw: Int, antenna: Int, receptor: Int, time: Double) -> SIMD2<Double>? {
        var g = SIMD2<Double>(1, 0)
        for table in series {
            guard let s = table[Self.key(spw: spw, antenna: antenna, receptor: receptor)],
                  let one = Self.interpolate(s, time) else { return nil }
            g = SIMD2(g.x * one.x - g.y * one.y, g.x * one.y + g.y * one.x)
        }
        return g
    }

    static func interpolate(_ s: Series, _ t: Double) -> SIMD2<Double>? {
        let n = s.times.count
        guard n > 0 else { return nil }
        // First index with time >= t.
        var lo = 0, hi = n
        while lo < hi {
            let mid = (lo + hi) / 2
            if s.times[mid] < t { lo = mid + 1 } else { hi = mid }
        }
        let nearest: Int
        if lo == 0 { nearest = 0 } else if lo == n { nearest = n - 1 } else {
            nearest = (t - s.times[lo - 1] <= s.times[lo] - t) ? lo - 1 : lo
        }
        if s.flags[nearest] { return nil }
        // Bracketing unflagged neighbours.
        var left = nearest, right = nearest
        if s.times[nearest] <= t {
            right = nearest + 1
            while right < n && s.flags[right] { right += 1 }
        } else {
            left = nearest - 1
            while left >= 0 && s.flags[left] { left -= 1 }
        }
        guard left >= 0, right < n, left != right, s.times[right] > s.times[left],
              t > s.times[left], t < s.times[right] else { return s.gains[nearest] }
        let f = (t - s.times[left]) / (s.times[right] - s.times[left])
        let a = s.gains[left], b = s.gains[right]
        let ampA = (a * a).sum().squareRoot(), ampB = (b * b).sum().squareRoot()
        let phA = atan2(a.y, a.x)
        var dph = atan2(b.y, b.x) - phA
        dph = remainder(dph, 2 * .pi)
        let amp = ampA + f * (ampB - ampA), ph = phA + f * dph
        return SIMD2(amp * cos(ph), amp * sin(ph))
    }
}
