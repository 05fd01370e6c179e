import CCasacore
import Foundation
import SelfCalSupport

/// What `selfcal simulate` makes: an array, a sky, gains that corrupt it, and noise.
public struct SimulationOptions: Sendable {
    public enum Preset: String, Sendable, CaseIterable {
        /// 16 antennas, 8 channels, 30 integrations: for tests.
        case small
        /// 96 antennas on the DSA-110-like layout, 48 channels, 30 integrations.
        case medium
        /// 96 antennas, 16 SPWs × 48 channels across 1311–1499 MHz, XX/YY, 24 × 12.885 s.
        case dsa110
    }

    public var preset: Preset = .small
    public var seed: UInt64 = 1
    /// Noise per real and imaginary part of each visibility, Jy.
    public var noiseJy: Double = 0.02
    /// Sources; nil → the preset's default field around the phase centre.
    public var sources: [SkyComponent]?
    /// Gain phases are drawn uniformly in ±gainPhaseDeg, plus a slow drift.
    public var gainPhaseDeg: Double = 60
    /// Gain amplitudes are 1 + gainAmplitude · N(0, 1).
    public var gainAmplitude: Double = 0.1
    /// Peak phase drift over the observation, degrees.
    public var gainDriftDeg: Double = 15
    public var corruptGains = true
    /// Antennas (indices) whose data are flagged.
    public var flaggedAntennas: [Int] = []
    /// Phase-centre frame written to FIELD: "J2000" or "B1950".
    public var frame: String = "J2000"
    /// Phase centre, J2000, radians.
    public var phaseCentre: (ra: Double, dec: Double) = (202.7845 * .pi / 180, 30.5092 * .pi / 180)
    /// Correlations; nil → XX/YY.
    public var correlations: [Correlation]?
    public var integrations: Int?
    public var channels: Int?

    public init(preset: Preset = .small) { self.preset = preset }
}

/// What `simulate` wrote.
public struct SimulationResult: Sendable {
    public var msPath: String
    public var truthPath: String
    public var catalogPath: String
    public var rows: Int
    public var visibilities: Int
    public var sources: [SkyComponent]
}

/// The truth beside a simulated MS (`<ms>.truth.json`).
public struct SimulationTruth: Codable, Sendable {
    public struct PhaseCentre: Codable, Sendable {
        public var raDeg: Double
        public var decDeg: Double
        public var frame: String
    }
    public var preset: String
    public var seed: UInt64
    public var phaseCentre: PhaseCentre
    public var sources: [SkyComponent]
    public var antennaNames: [String]
    public var correlations: [String]
    public var times: [Double]
    /// gains[t][antenna][receptor] = [re, im]; visibilities are g_p · M · conj(g_q).
    public var gains: [[[[Double]]]]
    public var flaggedAntennas: [Int]
    public var noiseJy: Double

    public static func load(_ path: String) throws -> SimulationTruth {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        return try dec.decode(SimulationTruth.self, from: data)
    }
}

/// Writes simulated Measurement Sets with known gains and sky.
public enum Simulator {
    /// The Owens Valley Radio Observatory (DSA-110's site), geodetic WGS84.
    static let ovro = (lat: 37.2339 * Double.pi / 180, lon: -118.2834 * Double.pi / 180, height: 1222.0)

    struct Geometry {
        var antennaENU: [SIMD3<Double>]
        var dish: Double
        var spws: Int
        var channels: Int
        var startFrequency: Double
        var channelWidth: Double
        var integrations: Int
        var integrationTime: Double
        var telescope: String
    }

    static func geometry(_ o: SimulationOptions) -> Geometry {
        switch o.preset {
        case .small:
            // A compact 2-D layout, fixed so every seed sees the same array.
            var rng = Xoshiro(seed: 42)
            var enu: [SIMD3<Double>] = []
            while enu.count < 16 {
                let r = 900 * rng.uniform().squareRoot(), th = 2 * Double.pi * rng.uniform()
                let p = SIMD3(r * cos(th), r * sin(th), 0)
                if enu.allSatisfy({ (($0 - p) * ($0 - p)).sum() > 900 }) { enu.append(p) }
            }
            return Geometry(antennaENU: enu, dish: 4.65, spws: 1, channels: o.channels ?? 8, startFrequency: 1.35e9,
                            channelWidth: 12.5e6, integrations: o.integrations ?? 30, integrationTime: 10,
                            telescope: "DSA_110")
        case .medium, .dsa110:
            let enu = dsa110Layout()
            let dsa = o.preset == .dsa110
            let nchan = o.channels ?? 48
            let width = dsa ? (1499e6 - 1311e6) / 768 : 0.2448e6
            return Geometry(antennaENU: enu, dish: 4.65, spws: dsa ? 16 : 1, channels: nchan,
                            startFrequency: dsa ? 1311e6 + width / 2 : 1.40e9, channelWidth: width,
                            integrations: o.integrations ?? (dsa ? 24 : 30), integrationTime: 12.885,
                            telescope: "DSA_110")
        }
    }

    /// 96 antennas on a T/L: an east–west arm of 63 and a north–south arm of 33, irregularly spaced.
    static func dsa110Layout() -> [SIMD3<Double>] {
        var rng = Xoshiro(seed: 110)
        var enu: [SIMD3<Double>] = []
        var x = -1200.0
        for _ in 0..<63 {
            enu.append(SIMD3(x, 0, 0))
            x += 20 + 30 * rng.uniform()
        }
        var y = -15.0
        for _ in 0..<33 {
            enu.append(SIMD3(0, y, 0))
            y -= 15 + 25 * rng.uniform()
        }
        return enu
    }

    /// Local east-north-up offsets → ITRF (WGS84 ellipsoid).
    static func itrf(_ enu: [SIMD3<Double>], lat: Double, lon: Double, height: Double) -> [SIMD3<Double>] {
        let a = 6_378_137.0, f = 1 / 298.257223563
        let e2 = f * (2 - f)
        let n = a / (1 - e2 * sin(lat) * sin(lat)).squareRoot()
        let x0 = (n + height) * cos(lat) * cos(lon)
        let y0 = (n + height) * cos(lat) * sin(lon)
        let z0 = (n * (1 - e2) + height) * sin(lat)
        return enu.map { p in
            let (e, nn, u) = (p.x, p.y, p.z)
            return SIMD3(
                x0 - sin(lon) * e - sin(lat) * cos(lon) * nn + cos(lat) * cos(lon) * u,
                y0 + cos(lon) * e - sin(lat) * sin(lon) * nn + cos(lat) * sin(lon) * u,
                z0 + cos(lat) * nn + sin(lat) * u)
        }
    }

    /// The preset's default field: a bright source at the phase centre and a few around it.
    public static func defaultSources(_ o: SimulationOptions) -> [SkyComponent] {
        let (ra0, dec0) = o.phaseCentre
        let offsets: [(Double, Double, Double)] = [
            (0, 0, 4.0), (0.12, 0.08, 1.5), (-0.15, 0.05, 1.0), (0.05, -0.18, 0.6),
        ]
        return offsets.enumerated().map { i, o in
            SkyComponent(name: "S\(i + 1)", ra: ra0 + o.0 * .pi / 180 / cos(dec0), dec: dec0 + o.1 * .pi / 180,
                         flux: o.2, spectralIndex: -0.7, referenceFrequency: 1.4e9)
        }
    }

    /// Writes `msPath` (which must not exist), `<ms>.truth.json` and `<ms>.catalog.fits`.
    public static func run(msPath: String, options o: SimulationOptions) throws -> SimulationResult {
        guard !FileManager.default.fileExists(atPath: msPath) else {
            throw PipelineError(.badConfig, "output already exists (remove it or choose another --out)", context: msPath)
        }
        guard ["J2000", "B1950"].contains(o.frame) else {
            throw PipelineError(.badConfig, "frame must be J2000 or B1950, not '\(o.frame)'", context: "--frame")
        }
        Measures.quietLogging()
        let g = geometry(o)
        let nant = g.antennaENU.count
        let corrs = o.correlations ?? [.XX, .YY]
        let npol = corrs.count, nchan = g.channels, nspw = g.spws
        for a in o.flaggedAntennas where a < 0 || a >= nant {
            throw PipelineError(.badConfig, "flagged antenna \(a) is outside 0..<\(nant)", context: "--flag-antenna")
        }
        let positions = itrf(g.antennaENU, lat: ovro.lat, lon: ovro.lon, height: ovro.height)
        let start = (60676.0 + 0.3) * 86400
        let times = (0..<g.integrations).map { start + (Double($0) + 0.5) * g.integrationTime }
        let freqs = (0..<(nspw * nchan)).map { g.startFrequency + Double($0) * g.channelWidth }
        let sources = o.sources ?? defaultSources(o)

        // Phase centre in the MS's frame; UVW are J2000 towards the same direction.
        let fieldDir = try Measures.convert(ra: o.phaseCentre.ra, dec: o.phaseCentre.dec, from: "J2000", to: o.frame, epoch: times[0])
        let uvw = try Measures.antennaUVW(itrf: positions, times: times, ra: fieldDir.ra, dec: fieldDir.dec, frame: o.frame)

        // Baselines in CASA order: p ≤ q, autocorrelations included.
        let baselines: [(Int32, Int32)] = (0..<nant).flatMap { p in (p..<nant).map { q in (Int32(p), Int32(q)) } }
        let nbl = baselines.count
        let rowsPerTime = nbl * nspw
        let nrows = rowsPerTime * times.count

        // Gains: per antenna and receptor, an offset phase with a slow sinusoidal drift.
        var rng = Xoshiro(seed: o.seed)
        let tspan = times.last! - times.first! + g.integrationTime
        var gains = [[[SIMD2<Double>]]]()  // [t][a][r]
        var gParams: [[(amp: Double, phase: Double, drift: Double, psi: Double)]] = []
        for _ in 0..<nant {
            var perR: [(Double, Double, Double, Double)] = []
            for _ in 0..<2 {
                let amp = o.corruptGains ? max(0.3, 1 + o.gainAmplitude * rng.gaussianPair().0) : 1
                let ph = o.corruptGains ? (2 * rng.uniform() - 1) * o.gainPhaseDeg * .pi / 180 : 0
                let drift = o.corruptGains ? o.gainDriftDeg * .pi / 180 * (2 * rng.uniform() - 1) : 0
                perR.append((amp, ph, drift, 2 * .pi * rng.uniform()))
            }
            gParams.append(perR)
        }
        for t in times {
            gains.append(gParams.map { perR in
                perR.map { pr in
                    let ph = pr.phase + pr.drift * sin(2 * .pi * (t - start) / (2 * tspan) + pr.psi)
                    return SIMD2(pr.amp * cos(ph), pr.amp * sin(ph))
                }
            })
        }

        let spec = positionsSpec(positions)
        let names = (1...nant).map { String($0) }.joined(separator: "\n")
        let corrTypes = corrs.map { $0.rawValue }
        var err = ErrorBuffer()
        let handle: OpaquePointer? = names.withCString { namesPtr in
            spec.withUnsafeBufferPointer { posPtr in
                freqs.withUnsafeBufferPointer { fPtr in
                    corrTypes.withUnsafeBufferPointer { cPtr in
                        "selfcal-sim".withCString { fieldName in
                            g.telescope.withCString { tel in
                                o.frame.withCString { frame in
                                    var s = ccasa_ms_spec(
                                        nant: Int32(nant), antenna_names: namesPtr, positions: posPtr.baseAddress,
                                        dish_diameter: g.dish, nspw: Int32(nspw), nchan: Int32(nchan),
                                        chan_freqs: fPtr.baseAddress, chan_width: g.channelWidth, npol: Int32(npol),
                                        corr_types: cPtr.baseAddress, phase_ra: fieldDir.ra, phase_dec: fieldDir.dec,
                                        direction_frame: frame, field_name: fieldName, telescope_name: tel,
                                        nrows: Int64(nrows), time_start: times[0] - g.integrationTime / 2,
                                        time_end: times.last! + g.integrationTime / 2)
                                    return err.call { ccasa_ms_create(msPath, &s, $0, $1) }
                                }
                            }
                        }
                    }
                }
            }
        }
        guard let handle else { throw PipelineError(.badInput, err.message, context: msPath) }
        let table = CasaTable(handle: handle, path: msPath, writable: true)

        let cell = nchan * npol
        let sigma = Float(o.noiseJy)
        let weight: Float = o.noiseJy > 0 ? 1 / (sigma * sigma) : 1
        let flaggedSet = Set(o.flaggedAntennas)
        var data = [Float](repeating: 0, count: 2 * rowsPerTime * cell)
        var flags = [UInt8](repeating: 0, count: rowsPerTime * cell)
        for (ti, t) in times.enumerated() {
            let antUVW = uvw[ti]
            let gt = gains[ti]
            data.withUnsafeMutableBufferPointer { dbuf in
                let dptr = SharedPointer(dbuf.baseAddress!)
                parallelFor(nspw) { s in
                    let f = Array(freqs[(s * nchan)..<((s + 1) * nchan)])
                    let predictor = PointPredictor(components: sources, phaseCentre: o.phaseCentre, frequencies: f)
                    let e = predictor.antennaFactors(uvw: antUVW)
                    var noise = Xoshiro(seed: o.seed &* 1_000_003 &+ UInt64(ti * 1000 + s))
                    var model = [Float](repeating: 0, count: 2 * nchan)
                    e.withUnsafeBufferPointer { eb in
                        model.withUnsafeMutableBufferPointer { mb in
                            for (bi, (p, q)) in baselines.enumerated() {
                                for k in 0..<(2 * nchan) { mb[k] = 0 }
                                predictor.accumulate(p: Int(p), q: Int(q), factors: eb.baseAddress!, into: mb.baseAddress!)
                                let row = s * nbl + bi
                                let out = dptr.base + 2 * row * cell
                                for c in 0..<nchan {
                                    let mr = Double(mb[2 * c]), mi = Double(mb[2 * c + 1])
                                    for (pi, corr) in corrs.enumerated() {
                                        let (r1, r2) = corr.receptors
                                        var vr = 0.0, vi = 0.0
                                        if corr.isParallelHand {
                                            // g_p · M · conj(g_q)
                                            let gp = gt[Int(p)][r1], gq = gt[Int(q)][r2]
                                            let ar = gp.x * mr - gp.y * mi, ai = gp.x * mi + gp.y * mr
                                            vr = ar * gq.x + ai * gq.y
                                            vi = ai * gq.x - ar * gq.y
                                        }
                                        if sigma > 0 {
                                            let (n1, n2) = noise.gaussianPair()
                                            vr += Double(sigma) * n1
                                            vi += Double(sigma) * n2
                                        }
                                        out[2 * (c * npol + pi)] = Float(vr)
                                        out[2 * (c * npol + pi) + 1] = Float(vi)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            for s in 0..<nspw {
                for (bi, (p, q)) in baselines.enumerated() {
                    let v: UInt8 = flaggedSet.contains(Int(p)) || flaggedSet.contains(Int(q)) ? 1 : 0
                    let row = s * nbl + bi
                    for k in 0..<cell { flags[row * cell + k] = v }
                }
            }
            let r0 = ti * rowsPerTime
            var a1 = [Int32](), a2 = [Int32](), dd = [Int32](), uv = [Double]()
            a1.reserveCapacity(rowsPerTime)
            for s in 0..<nspw {
                for (p, q) in baselines {
                    a1.append(p)
                    a2.append(q)
                    dd.append(Int32(s))
                    let b = antUVW[Int(q)] - antUVW[Int(p)]
                    uv.append(contentsOf: [b.x, b.y, b.z])
                }
            }
            try table.putDoubles("TIME", start: r0, Array(repeating: t, count: rowsPerTime))
            try table.putDoubles("TIME_CENTROID", start: r0, Array(repeating: t, count: rowsPerTime))
            try table.putDoubles("INTERVAL", start: r0, Array(repeating: g.integrationTime, count: rowsPerTime))
            try table.putDoubles("EXPOSURE", start: r0, Array(repeating: g.integrationTime, count: rowsPerTime))
            try table.putInts("ANTENNA1", start: r0, a1)
            try table.putInts("ANTENNA2", start: r0, a2)
            try table.putInts("DATA_DESC_ID", start: r0, dd)
            try table.putInts("SCAN_NUMBER", start: r0, Array(repeating: 1, count: rowsPerTime))
            try table.putInts("STATE_ID", start: r0, Array(repeating: -1, count: rowsPerTime))
            try table.writeDoubleArrays("UVW", start: r0, count: rowsPerTime, cellSize: 3, uv)
            try data.withUnsafeBufferPointer { try table.writeComplex("DATA", start: r0, count: rowsPerTime, cellSize: cell, from: $0) }
            try flags.withUnsafeBufferPointer { try table.writeFlags("FLAG", start: r0, count: rowsPerTime, cellSize: cell, from: $0) }
            let w = [Float](repeating: weight, count: rowsPerTime * npol)
            let sg = [Float](repeating: sigma > 0 ? sigma : 1, count: rowsPerTime * npol)
            try w.withUnsafeBufferPointer { try table.writeFloats("WEIGHT", start: r0, count: rowsPerTime, cellSize: npol, from: $0) }
            try sg.withUnsafeBufferPointer { try table.writeFloats("SIGMA", start: r0, count: rowsPerTime, cellSize: npol, from: $0) }
        }
        try table.release()

        // The truth and a matching catalog beside the MS.
        let truthPath = msPath + ".truth.json"
        let truth = SimulationTruth(
            preset: o.preset.rawValue, seed: o.seed,
            phaseCentre: .init(raDeg: o.phaseCentre.ra * 180 / .pi, decDeg: o.phaseCentre.dec * 180 / .pi, frame: o.frame),
            sources: sources, antennaNames: (1...nant).map { String($0) }, correlations: corrs.map(\.name), times: times,
            gains: gains.map { $0.map { $0.map { [$0.x, $0.y] } } }, flaggedAntennas: o.flaggedAntennas, noiseJy: o.noiseJy)
        let enc = JSONEncoder()
        enc.keyEncodingStrategy = .convertToSnakeCase
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(truth).write(to: URL(fileURLWithPath: truthPath))
        let catalogPath = msPath + ".catalog.fits"
        try NVSSCatalogWriter.write(sources: sources, to: catalogPath)
        return SimulationResult(msPath: msPath, truthPath: truthPath, catalogPath: catalogPath, rows: nrows,
                                visibilities: nrows * cell, sources: sources)
    }

    private static func positionsSpec(_ p: [SIMD3<Double>]) -> [Double] { p.flatMap { [$0.x, $0.y, $0.z] } }
}
