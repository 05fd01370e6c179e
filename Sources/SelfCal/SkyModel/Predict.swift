import Foundation
import Logging
import SelfCalSupport

/// Where sky positions sit relative to a Measurement Set's phase centre, in the frame of its
/// UVW coordinates: the phase centre (FIELD, in its own frame, J2000 or B1950) and the
/// components (J2000) are both converted into the UVW column's frame (its MEASINFO reference,
/// J2000 when absent) with casacore measures before direction cosines are taken.
public struct PhaseReference: Sendable {
    /// The frame of UVW, in which (l, m, n) are taken.
    public let frame: String
    /// The phase centre in `frame`, radians.
    public let centre: (ra: Double, dec: Double)
    /// The phase centre in J2000, radians (for beams, cone searches and image headers).
    public let centreJ2000: (ra: Double, dec: Double)
    /// The first TIME of the MS (MJD seconds): the epoch of the conversions.
    public let epoch: Double

    /// Reads FIELD 0 and the UVW frame. Throws `.badInput` when a conversion fails.
    public init(ms: MeasurementSet) throws {
        let field = ms.fields[0]
        epoch = try ms.table.doubles("TIME", start: 0, count: min(1, ms.rowCount)).first ?? 0
        frame = (try? ms.table.columnKeyword("UVW", "MEASINFO.Ref")).flatMap { $0.isEmpty ? nil : $0 } ?? "J2000"
        Measures.quietLogging()
        centre = try Measures.convert(ra: field.ra, dec: field.dec, from: field.frame, to: frame, epoch: epoch)
        centreJ2000 = try Measures.convert(ra: field.ra, dec: field.dec, from: field.frame, to: "J2000", epoch: epoch)
    }

    /// (l, m, n − 1) of each component (J2000 positions) in the UVW frame.
    public func lmn(_ components: [SkyComponent]) throws -> [SIMD3<Double>] {
        try components.map { c in
            let p = frame == "J2000" ? (c.ra, c.dec) : try Measures.convert(ra: c.ra, dec: c.dec, from: "J2000", to: frame, epoch: epoch)
            let d = directionCosines(ra: p.0, dec: p.1, ra0: centre.ra, dec0: centre.dec)
            return SIMD3(d.l, d.m, d.n - 1)
        }
    }

    /// Angular distance of each component from the phase centre (taken as the pointing centre).
    public func offsets(_ components: [SkyComponent]) -> [Double] {
        components.map { angularSeparation(ra1: centreJ2000.ra, dec1: centreJ2000.dec, ra2: $0.ra, dec2: $0.dec) }
    }
}

/// What a predict did, for logs, reports and benchmarks.
public struct PredictStatistics: Sendable {
    public var rows = 0
    /// rows × channels × components: the number of source terms evaluated.
    public var terms = 0
    /// Rows whose UVW did not factor into per-antenna UVW and were evaluated row by row.
    public var rowsEvaluatedDirectly = 0
    public var threads = 1
    /// Wall time of the whole predict, and the part spent computing (not reading or writing).
    public var seconds = 0.0
    public var computeSeconds = 0.0
    /// CPU time of all threads while computing (robust to other load on the machine):
    /// terms / computeCPUSeconds is the rate per core.
    public var computeCPUSeconds = 0.0
    /// CPU time of the whole predict, I/O included.
    public var cpuSeconds = 0.0
}

/// CPU time of this process so far, seconds (`clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`).
func processCPUTime() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Fills MODEL_DATA from sky components by direct Fourier evaluation:
/// M_pq(ν) = Σ_s A_s(ν) S_s(ν) G_s,pq(ν) exp(+2πi (u l + v m + w (n − 1)) ν / c) with the MS's
/// UVW (ANTENNA2 − ANTENNA1, WSClean's convention), S a power law, A an Airy primary beam and G
/// a Gaussian's baseline-dependent attenuation (1 for points). Parallel hands get M, cross
/// hands zero (unpolarised components). Every SPW and channel; rows are read and written in
/// chunks, computed over `threads` cores.
///
/// Two methods, both without sin/cos per visibility:
/// - `.perAntenna` (default): per timestep, UVW is factored into per-antenna UVW (uvw_pq =
///   uvw_q − uvw_p, checked on every row to 1 µm); then one complex exponential per antenna,
///   component and channel (a rotation per channel step), and per baseline only products
///   conj(e_p)·(S e_q), vectorised over channels. Rows whose UVW does not factor are evaluated
///   row by row.
/// - `.perRow`: per row and component two complex exponentials (first channel and channel
///   step), then a complex rotation per channel.
public struct ModelPredictor: Sendable {
    public enum Method: String, Sendable, CaseIterable { case perAntenna, perRow }

    public var components: [SkyComponent]
    /// nil: no primary-beam attenuation (the fluxes are apparent fluxes).
    public var primaryBeam: AiryBeam?
    public var method: Method
    /// Cores to use; nil → all.
    public var threads: Int?
    /// Components per block in the per-antenna method (bounds memory: antennas × block ×
    /// channels × 16 bytes).
    public var componentBlock = 64
    /// Polled between chunks besides `Task.isCancelled` (for work run off the task's thread).
    public var isCancelled: @Sendable () -> Bool = { false }
    public var logger: Logger

    public init(components: [SkyComponent], primaryBeam: AiryBeam? = nil, method: Method = .perAntenna,
                threads: Int? = nil, logger: Logger = Logger(label: "selfcal.predict")) {
        self.components = components
        self.primaryBeam = primaryBeam
        self.method = method
        self.threads = threads
        self.logger = logger
    }

    /// UVW of a row must match the per-antenna difference to this many metres for the
    /// per-antenna method (phase error ≤ 2π·1e-6·|l|/λ: below 2e-6 rad at 21 cm).
    static let uvwTolerance = 1e-6

    /// Writes MODEL_DATA (created if absent) for every row.
    ///
    /// Throws `.badInput` when the MS is read-only or a component is not finite; `.interrupted`
    /// when the calling task is cancelled (checked between chunks: MODEL_DATA is then partly
    /// written).
    @discardableResult
    public func predict(into ms: MeasurementSet) throws -> PredictStatistics {
        let start = Date(), cpuStart = processCPUTime()
        guard ms.isWritable else {
            throw PipelineError(.badInput, "the MS must be opened for writing to fill MODEL_DATA", context: ms.path)
        }
        for c in components {
            let shapeOK = c.shape.map { $0.majorAxis.isFinite && $0.minorAxis.isFinite && $0.positionAngle.isFinite } ?? true
            guard c.ra.isFinite, c.dec.isFinite, c.flux.isFinite, c.spectralIndex.isFinite, c.referenceFrequency > 0, shapeOK else {
                throw PipelineError(.badInput, "component '\(c.name)' has a non-finite position, flux, spectral index or shape")
            }
        }
        try ms.ensureDataColumn("MODEL_DATA")
        let ref = try PhaseReference(ms: ms)
        let lmn = try ref.lmn(components)
        let offsets = ref.offsets(components)
        let workers = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
        var stats = PredictStatistics()
        stats.threads = workers
        var plans: [Int: SpectralPlan] = [:]
        var model = [Float]()
        for chunk in try ms.rowChunks() {
            if Task.isCancelled || isCancelled() { throw PipelineError(.interrupted, "predict was cancelled; MODEL_DATA is incomplete", context: ms.path) }
            let (spw, pol) = try ms.setup(of: chunk.dataDescription)
            let plan: SpectralPlan
            if let p = plans[spw.id] { plan = p } else {
                plan = SpectralPlan(components: components, offsets: offsets, lmn: lmn, frequencies: spw.frequencies, beam: primaryBeam)
                plans[spw.id] = plan
            }
            let v = try ms.read(chunk, dataColumn: nil, extra: [.uvw])
            let t0 = Date(), c0 = processCPUTime()
            let npol = pol.correlations.count, cs = plan.nchan * npol
            if model.count != 2 * chunk.count * cs { model = [Float](repeating: 0, count: 2 * chunk.count * cs) }
            let kernel = ChunkKernel(plan: plan, visibilities: v, workers: workers, componentBlock: componentBlock)
            let direct = model.withUnsafeMutableBufferPointer { buf in
                kernel.run(method: method, parallel: pol.correlations.map(\.isParallelHand), into: SharedPointer(buf.baseAddress!))
            }
            stats.computeSeconds += Date().timeIntervalSince(t0)
            stats.computeCPUSeconds += processCPUTime() - c0
            stats.rowsEvaluatedDirectly += direct
            stats.rows += chunk.count
            stats.terms += chunk.count * plan.nchan * components.count
            try ms.writeData("MODEL_DATA", chunk: chunk, cellSize: cs, from: model)
        }
        try ms.table.release()
        stats.seconds = Date().timeIntervalSince(start)
        stats.cpuSeconds = processCPUTime() - cpuStart
        logger.info("predicted \(components.count) component(s) into MODEL_DATA of \(ms.rowCount) rows in \(String(format: "%.2f", stats.seconds)) s (\(workers) thread(s), \(method.rawValue)\(stats.rowsEvaluatedDirectly > 0 ? ", \(stats.rowsEvaluatedDirectly) rows evaluated directly" : ""))")
        return stats
    }
}

/// Everything about the components that depends only on the SPW: per-channel fluxes with
/// spectrum and beam, positions, and Gaussian shapes. Points come first, then Gaussians.
struct SpectralPlan: Sendable {
    let frequencies: [Double]
    let nchan: Int
    /// Channels padded to a multiple of 8 (the SIMD width).
    let ncPad: Int
    /// Whether channels are evenly spaced (then phases advance by rotation).
    let regular: Bool
    let step: Double
    /// (l, m, n − 1), points then Gaussians.
    let lmn: [SIMD3<Double>]
    /// flux[s * ncPad + c], apparent (spectrum × beam), zero in padding.
    let flux: [Float]
    let pointCount: Int
    /// For each Gaussian (after the points): the quadratic form's coefficients in metres,
    /// Q(b) = qa bx² + qb bx by + qc by², so that G(ν) = exp(−Q ν² / c²).
    let gaussian: [SIMD3<Double>]

    var count: Int { lmn.count }

    init(components: [SkyComponent], offsets: [Double], lmn allLMN: [SIMD3<Double>], frequencies: [Double], beam: AiryBeam?) {
        self.frequencies = frequencies
        nchan = frequencies.count
        ncPad = (nchan + 7) / 8 * 8
        let n = nchan
        step = n > 1 ? frequencies[1] - frequencies[0] : 0
        var reg = true
        if n > 2 {
            for c in 2..<n where abs((frequencies[c] - frequencies[c - 1]) - step) > 1e-9 * abs(frequencies[c]) { reg = false; break }
        }
        regular = reg && step != 0
        let order = components.indices.filter { components[$0].shape == nil } + components.indices.filter { components[$0].shape != nil }
        pointCount = components.filter { $0.shape == nil }.count
        lmn = order.map { allLMN[$0] }
        var f = [Float](repeating: 0, count: order.count * ncPad)
        for (s, i) in order.enumerated() {
            for c in 0..<n {
                let a = beam?.gain(offset: offsets[i], frequency: frequencies[c]) ?? 1
                f[s * ncPad + c] = Float(components[i].flux(at: frequencies[c]) * a)
            }
        }
        flux = f
        gaussian = order.dropFirst(pointCount).map { i in
            let g = components[i].shape!
            let (sp, cp) = (sin(g.positionAngle), cos(g.positionAngle))
            let a2 = g.majorAxis * g.majorAxis, b2 = g.minorAxis * g.minorAxis
            let k = gaussianUVConstant / (speedOfLight * speedOfLight)
            // a²(bx s + by c)² + b²(bx c − by s)²
            return SIMD3(k * (a2 * sp * sp + b2 * cp * cp), k * 2 * sp * cp * (a2 - b2), k * (a2 * cp * cp + b2 * sp * sp))
        }
    }

    /// G(ν_c) for channel c of a Gaussian with quadratic form value q (Q/c² already in), into g.
    @inline(__always)
    func gaussianFactors(q: Double, into g: UnsafeMutablePointer<Float>) {
        if regular {
            // exp(−q ν²) with ν = ν₀ + cΔ: ratios of successive channels advance geometrically.
            let nu0 = frequencies[0]
            var value = exp(-q * nu0 * nu0)
            var ratio = exp(-q * (2 * nu0 * step + step * step))
            let d = exp(-2 * q * step * step)
            for c in 0..<nchan {
                g[c] = Float(value)
                value *= ratio
                ratio *= d
            }
        } else {
            for c in 0..<nchan { g[c] = Float(exp(-q * frequencies[c] * frequencies[c])) }
        }
    }
}

/// The computation for one chunk of rows with one SPW.
struct ChunkKernel: Sendable {
    let plan: SpectralPlan
    let v: VisibilityChunk
    let workers: Int
    let componentBlock: Int

    init(plan: SpectralPlan, visibilities: VisibilityChunk, workers: Int, componentBlock: Int) {
        self.plan = plan
        self.v = visibilities
        self.workers = workers
        self.componentBlock = max(1, componentBlock)
    }

    /// Fills `out` (interleaved complex, casacore order) for every row; returns how many rows
    /// were evaluated row by row.
    func run(method: ModelPredictor.Method, parallel: [Bool], into out: SharedPointer<Float>) -> Int {
        let n = v.rowCount
        guard n > 0 else { return 0 }
        let ncPad = plan.ncPad
        // Accumulators per row, split re/im, padded channels.
        var accRe = [Float](repeating: 0, count: n * ncPad)
        var accIm = [Float](repeating: 0, count: n * ncPad)
        var direct = 0
        accRe.withUnsafeMutableBufferPointer { reBuf in
            accIm.withUnsafeMutableBufferPointer { imBuf in
                let re = SharedPointer(reBuf.baseAddress!), im = SharedPointer(imBuf.baseAddress!)
                if method == .perRow || plan.count == 0 {
                    if plan.count > 0 { directRows(Array(0..<n), re: re, im: im) }
                    direct = plan.count > 0 ? n : 0
                } else {
                    var start = 0
                    while start < n {
                        var end = start + 1
                        while end < n && v.time[end] == v.time[start] { end += 1 }
                        direct += timestep(start..<end, re: re, im: im)
                        start = end
                    }
                }
                scatter(re: re, im: im, parallel: parallel, into: out)
            }
        }
        return direct
    }

    /// One timestep by per-antenna factors; rows that do not factor go row by row.
    func timestep(_ rows: Range<Int>, re: SharedPointer<Float>, im: SharedPointer<Float>) -> Int {
        let (antUVW, known, ok) = antennaUVW(rows)
        let bad = rows.filter { !ok[$0 - rows.lowerBound] }
        let good = rows.filter { ok[$0 - rows.lowerBound] }
        if !bad.isEmpty { directRows(bad, re: re, im: im) }
        guard !good.isEmpty else { return bad.count }
        let antennas = known.indices.filter { known[$0] }
        var slots = [Int](repeating: -1, count: known.count)
        for (k, a) in antennas.enumerated() { slots[a] = k }
        let slot = slots
        let na = antennas.count, ncPad = plan.ncPad, nchan = plan.nchan
        let block = min(componentBlock, plan.count)
        // e = exp(iφ) and f = S·e per (antenna slot, component in block, channel), re and im apart.
        let size = na * block * ncPad
        var buffers = [Float](repeating: 0, count: 4 * size)
        let rowCount = good.count
        let chunksOfRows = min(workers, max(1, rowCount / 64))
        plan.flux.withUnsafeBufferPointer { flb in
        buffers.withUnsafeMutableBufferPointer { bb in
            let b = SharedPointer(bb.baseAddress!)
            let fl = SharedPointer(UnsafeMutablePointer(mutating: flb.baseAddress!))
            for s0 in stride(from: 0, to: plan.count, by: block) {
                let nb = min(block, plan.count - s0)
                // Factors, parallel over antennas.
                parallelFor(min(workers, na)) { w in
                    for k in stride(from: w, to: na, by: min(workers, na)) {
                        let ua = antUVW[antennas[k]]
                        for j in 0..<nb {
                            let s = s0 + j
                            let o = (k * block + j) * ncPad
                            antennaFactor(uvw: ua, component: s, flux: fl.base, eRe: b.base + o, eIm: b.base + size + o,
                                          fRe: b.base + 2 * size + o, fIm: b.base + 3 * size + o)
                        }
                    }
                }
                // Products per baseline, parallel over row ranges.
                parallelFor(chunksOfRows) { w in
                    let lo = rowCount * w / chunksOfRows, hi = rowCount * (w + 1) / chunksOfRows
                    var g = [Float](repeating: 0, count: ncPad)
                    g.withUnsafeMutableBufferPointer { gb in
                        for i in lo..<hi {
                            let r = good[i]
                            let p = slot[Int(v.antenna1[r])], q = slot[Int(v.antenna2[r])]
                            let ep = (b.base + p * block * ncPad, b.base + size + p * block * ncPad)
                            let fq = (b.base + 2 * size + q * block * ncPad, b.base + 3 * size + q * block * ncPad)
                            let accR = re.base + r * ncPad, accI = im.base + r * ncPad
                            // Points of this block.
                            let pointsEnd = max(0, min(nb, plan.pointCount - s0))
                            if pointsEnd > 0 {
                                productSum(ep: ep, fq: fq, components: 0..<pointsEnd, ncPad: ncPad, accRe: accR, accIm: accI)
                            }
                            // Gaussians of this block: each product scaled by its own G(ν).
                            if pointsEnd < nb {
                                let bx = v.uvw[3 * r], by = v.uvw[3 * r + 1]
                                for j in pointsEnd..<nb {
                                    let gq = plan.gaussian[s0 + j - plan.pointCount]
                                    let qv = gq.x * bx * bx + gq.y * bx * by + gq.z * by * by
                                    plan.gaussianFactors(q: qv, into: gb.baseAddress!)
                                    for c in nchan..<ncPad { gb[c] = 0 }
                                    productSum(ep: ep, fq: fq, components: j..<(j + 1), ncPad: ncPad, accRe: accR, accIm: accI,
                                               scale: gb.baseAddress!)
                                }
                            }
                        }
                    }
                }
            }
        }
        }
        return bad.count
    }

    /// acc[c] += Σ_s conj(e_p,s,c) · f_q,s,c (× scale[c]), eight channels at a time.
    @inline(__always)
    func productSum(ep: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>),
                    fq: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>),
                    components: Range<Int>, ncPad: Int,
                    accRe: UnsafeMutablePointer<Float>, accIm: UnsafeMutablePointer<Float>,
                    scale: UnsafeMutablePointer<Float>? = nil) {
        typealias V = SIMD8<Float>
        @inline(__always) func load(_ p: UnsafeMutablePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
        @inline(__always) func store(_ x: V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: x, as: V.self) }
        let lo = components.lowerBound, hi = components.upperBound
        for c in stride(from: 0, to: ncPad, by: 8) {
            // Two components per step into separate accumulators: the adds of one do not wait
            // for the other's (four independent dependency chains per eight channels).
            var ar0 = V(), ai0 = V(), ar1 = V(), ai1 = V()
            var pr = ep.0 + (lo &* ncPad &+ c), pi = ep.1 + (lo &* ncPad &+ c)
            var qr = fq.0 + (lo &* ncPad &+ c), qi = fq.1 + (lo &* ncPad &+ c)
            var s = lo
            while s &+ 1 < hi {
                let a0 = load(pr), b0 = load(pi), c0 = load(qr), d0 = load(qi)
                let a1 = load(pr + ncPad), b1 = load(pi + ncPad), c1 = load(qr + ncPad), d1 = load(qi + ncPad)
                ar0 += a0 * c0 + b0 * d0
                ai0 += a0 * d0 - b0 * c0
                ar1 += a1 * c1 + b1 * d1
                ai1 += a1 * d1 - b1 * c1
                pr += 2 &* ncPad; pi += 2 &* ncPad; qr += 2 &* ncPad; qi += 2 &* ncPad
                s &+= 2
            }
            if s < hi {
                let a0 = load(pr), b0 = load(pi), c0 = load(qr), d0 = load(qi)
                ar0 += a0 * c0 + b0 * d0
                ai0 += a0 * d0 - b0 * c0
            }
            var ar = ar0 + ar1, ai = ai0 + ai1
            if let scale {
                let g = load(scale + c)
                ar *= g
                ai *= g
            }
            store(load(accRe + c) + ar, accRe + c)
            store(load(accIm + c) + ai, accIm + c)
        }
    }

    /// e = exp(+2πi uvw·lmn ν/c) per channel (rotation by the channel step when channels are
    /// regular), and f = S·e.
    @inline(__always)
    func antennaFactor(uvw: SIMD3<Double>, component s: Int, flux: UnsafePointer<Float>, eRe: UnsafeMutablePointer<Float>, eIm: UnsafeMutablePointer<Float>,
                       fRe: UnsafeMutablePointer<Float>, fIm: UnsafeMutablePointer<Float>) {
        let phasePerHz = 2 * Double.pi / speedOfLight * (uvw * plan.lmn[s]).sum()
        let fl = flux + s * plan.ncPad
        let f = plan.frequencies
        if plan.regular {
            var er = cos(phasePerHz * f[0]), ei = sin(phasePerHz * f[0])
            let sr = cos(phasePerHz * plan.step), si = sin(phasePerHz * plan.step)
            for c in 0..<plan.nchan {
                eRe[c] = Float(er); eIm[c] = Float(ei)
                fRe[c] = Float(er) * fl[c]; fIm[c] = Float(ei) * fl[c]
                (er, ei) = (er * sr - ei * si, er * si + ei * sr)
            }
        } else {
            for c in 0..<plan.nchan {
                let ph = phasePerHz * f[c]
                let er = Float(cos(ph)), ei = Float(sin(ph))
                eRe[c] = er; eIm[c] = ei
                fRe[c] = er * fl[c]; fIm[c] = ei * fl[c]
            }
        }
    }

    /// Per-antenna UVW for the rows of one timestep (uvw_q − uvw_p = UVW of row p–q), each
    /// connected set of antennas rooted at zero; which antennas are known; which rows agree.
    func antennaUVW(_ rows: Range<Int>) -> ([SIMD3<Double>], [Bool], [Bool]) {
        var nant = 0
        for r in rows { nant = max(nant, Int(v.antenna1[r]) + 1, Int(v.antenna2[r]) + 1) }
        var uvwA = [SIMD3<Double>](repeating: .zero, count: nant)
        var known = [Bool](repeating: false, count: nant)
        func b(_ r: Int) -> SIMD3<Double> { SIMD3(v.uvw[3 * r], v.uvw[3 * r + 1], v.uvw[3 * r + 2]) }
        // Breadth-first over the baselines of this timestep, each connected set from its own root.
        var edges = [[(Int, Int)]](repeating: [], count: nant)
        for r in rows {
            let p = Int(v.antenna1[r]), q = Int(v.antenna2[r])
            if p == q || p < 0 || q < 0 { continue }
            edges[p].append((q, r))
            edges[q].append((p, r))
        }
        var queue: [Int] = []
        for root in 0..<nant where !known[root] && !edges[root].isEmpty {
            known[root] = true
            queue = [root]
            var head = 0
            while head < queue.count {
                let a = queue[head]
                head += 1
                for (other, r) in edges[a] where !known[other] {
                    // Row r is p–q with uvw = uvw_q − uvw_p.
                    uvwA[other] = Int(v.antenna1[r]) == a ? uvwA[a] + b(r) : uvwA[a] - b(r)
                    known[other] = true
                    queue.append(other)
                }
            }
        }
        var ok = [Bool](repeating: false, count: rows.count)
        let tol = ModelPredictor.uvwTolerance
        for r in rows {
            let p = Int(v.antenna1[r]), q = Int(v.antenna2[r])
            guard p >= 0, q >= 0 else { continue }
            if p == q {
                if !known[p] { known[p] = true; uvwA[p] = .zero }
                let d = b(r)
                ok[r - rows.lowerBound] = max(abs(d.x), abs(d.y), abs(d.z)) <= tol
                continue
            }
            guard known[p], known[q] else { continue }
            let d = uvwA[q] - uvwA[p] - b(r)
            ok[r - rows.lowerBound] = max(abs(d.x), abs(d.y), abs(d.z)) <= tol
        }
        return (uvwA, known, ok)
    }

    /// Row-by-row evaluation: two complex exponentials per row and component, a rotation per
    /// channel, accumulated in Double.
    func directRows(_ rows: [Int], re: SharedPointer<Float>, im: SharedPointer<Float>) {
        let nw = min(workers, max(1, rows.count / 64))
        let nchan = plan.nchan, ncPad = plan.ncPad
        parallelFor(nw) { w in
            let lo = rows.count * w / nw, hi = rows.count * (w + 1) / nw
            var acc = [Double](repeating: 0, count: 2 * nchan)
            var g = [Float](repeating: 1, count: ncPad)
            let k = 2 * Double.pi / speedOfLight
            let f = plan.frequencies
            for i in lo..<hi {
                let r = rows[i]
                for c in 0..<(2 * nchan) { acc[c] = 0 }
                let u = SIMD3(v.uvw[3 * r], v.uvw[3 * r + 1], v.uvw[3 * r + 2])
                for s in 0..<plan.count {
                    let fs = s * ncPad
                    if s >= plan.pointCount {
                        let gq = plan.gaussian[s - plan.pointCount]
                        let qv = gq.x * u.x * u.x + gq.y * u.x * u.y + gq.z * u.y * u.y
                        g.withUnsafeMutableBufferPointer { plan.gaussianFactors(q: qv, into: $0.baseAddress!) }
                    }
                    let isGauss = s >= plan.pointCount
                    let phasePerHz = k * (u * plan.lmn[s]).sum()
                    if plan.regular {
                        var er = cos(phasePerHz * f[0]), ei = sin(phasePerHz * f[0])
                        let sr = cos(phasePerHz * plan.step), si = sin(phasePerHz * plan.step)
                        for c in 0..<nchan {
                            let a = Double(plan.flux[fs + c]) * (isGauss ? Double(g[c]) : 1)
                            acc[2 * c] += a * er
                            acc[2 * c + 1] += a * ei
                            (er, ei) = (er * sr - ei * si, er * si + ei * sr)
                        }
                    } else {
                        for c in 0..<nchan {
                            let ph = phasePerHz * f[c]
                            let a = Double(plan.flux[fs + c]) * (isGauss ? Double(g[c]) : 1)
                            acc[2 * c] += a * cos(ph)
                            acc[2 * c + 1] += a * sin(ph)
                        }
                    }
                }
                for c in 0..<nchan {
                    re.base[r * ncPad + c] = Float(acc[2 * c])
                    im.base[r * ncPad + c] = Float(acc[2 * c + 1])
                }
            }
        }
    }

    /// Accumulators → interleaved complex rows, parallel hands only.
    func scatter(re: SharedPointer<Float>, im: SharedPointer<Float>, parallel: [Bool], into out: SharedPointer<Float>) {
        let n = v.rowCount, nchan = plan.nchan, ncPad = plan.ncPad, npol = parallel.count
        let nw = min(workers, max(1, n / 256))
        parallelFor(nw) { w in
            let lo = n * w / nw, hi = n * (w + 1) / nw
            for r in lo..<hi {
                let o = out.base + 2 * r * nchan * npol
                for c in 0..<nchan {
                    let mr = re.base[r * ncPad + c], mi = im.base[r * ncPad + c]
                    for p in 0..<npol {
                        o[2 * (c * npol + p)] = parallel[p] ? mr : 0
                        o[2 * (c * npol + p) + 1] = parallel[p] ? mi : 0
                    }
                }
            }
        }
    }
}
