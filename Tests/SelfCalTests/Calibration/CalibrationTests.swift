import Foundation
import Imaging
import Testing

@testable import SelfCal

/// Gain solving and applying against known truths: simulated gains, and CASA's own solutions
/// on real VLA data.
@Suite("Gain calibration", .serialized)
struct CalibrationTests {
    /// Simulates, seeds MODEL_DATA with the true sky through the predictor, and returns the MS.
    static func simulated(_ dir: URL, seed: UInt64, noise: Double, drift: Double = 15,
                          flagged: [Int] = [], integrations: Int? = nil) throws -> (MeasurementSet, SimulationTruth) {
        let path = dir.appendingPathComponent("sim-\(seed).ms").path
        var o = SimulationOptions(preset: .small)
        o.seed = seed
        o.noiseJy = noise
        o.gainDriftDeg = drift
        o.flaggedAntennas = flagged
        o.integrations = integrations
        let r = try Simulator.run(msPath: path, options: o)
        let ms = try MeasurementSet(path: path, mode: .readWrite)
        try ModelPredictor(components: r.sources).predict(into: ms)
        return (ms, try SimulationTruth.load(r.truthPath))
    }

    /// Truth gain referenced to `ref` (phase of ref = 0), averaged over the solution's times.
    static func truthGain(_ truth: SimulationTruth, antenna: Int, ref: Int, receptor: Int, times: ClosedRange<Double>) -> SIMD2<Double> {
        var sum = SIMD2<Double>(0, 0), n = 0.0
        for (ti, t) in truth.times.enumerated() where times.contains(t) {
            let g = truth.gains[ti][antenna][receptor], r = truth.gains[ti][ref][receptor]
            let rm = (r[0] * r[0] + r[1] * r[1]).squareRoot()
            // g · conj(r) / |r|
            sum += SIMD2((g[0] * r[0] + g[1] * r[1]) / rm, (g[1] * r[0] - g[0] * r[1]) / rm)
            n += 1
        }
        return sum / n
    }

    struct Comparison {
        var rmsError = 0.0
        var maxError = 0.0
        var medianParamErr = 0.0
        var compared = 0
    }

    /// Compares solutions with the truth; phase only for `p`.
    static func compare(_ table: GainTable, _ truth: SimulationTruth, mode: CalMode, skip: Set<Int> = []) -> Comparison {
        var c = Comparison()
        var errs: [Double] = [], perrs: [Double] = []
        for s in table.solutions where !skip.contains(s.antenna) {
            let span = s.interval == 0 ? 1e-3 : s.interval / 2 + 1e-3
            for r in 0..<2 where !s.flags[r] {
                let t = truthGain(truth, antenna: s.antenna, ref: s.referenceAntenna, receptor: r, times: (s.time - span)...(s.time + span))
                let g = s.gains[r]
                let e: Double
                if mode == .p {
                    e = abs(remainder(atan2(g.y, g.x) - atan2(t.y, t.x), 2 * .pi))
                } else {
                    let d = g - t
                    e = (d * d).sum().squareRoot()
                }
                errs.append(e)
                perrs.append(Double(s.paramErr[r]))
            }
        }
        c.compared = errs.count
        c.rmsError = (errs.map { $0 * $0 }.reduce(0, +) / Double(max(1, errs.count))).squareRoot()
        c.maxError = errs.max() ?? 0
        c.medianParamErr = perrs.sorted()[perrs.count / 2]
        return c
    }

    @Test(.timeLimit(.minutes(3)), arguments: [
        (seed: UInt64(1), noise: 0.0, mode: CalMode.ap, solint: "int"),
        (seed: 2, noise: 0.05, mode: .p, solint: "int"),
        (seed: 3, noise: 0.2, mode: .ap, solint: "int"),
        (seed: 4, noise: 0.2, mode: .p, solint: "60s"),
        (seed: 5, noise: 0.5, mode: .ap, solint: "inf"),
    ])
    func recoversSimulatedGains(seed: UInt64, noise: Double, mode: CalMode, solint: String) throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let drift = solint == "int" ? 15.0 : 0  // longer intervals average: keep the truth constant within them
        let (ms, truth) = try Self.simulated(dir, seed: seed, noise: noise, drift: drift)
        var o = SolveOptions()
        o.calMode = mode
        o.solint = try SolutionInterval(parsing: solint)
        o.refant = "3"
        let table = try GainSolver(options: o).solve(ms: ms)
        let expectedCells = solint == "int" ? 30 : solint == "inf" ? 1 : 5
        #expect(table.solutions.count == expectedCells * 16)
        // The reference antenna (name "3" is index 2) has phase zero.
        for s in table.solutions where s.antenna == 2 { #expect(abs(s.gains[0].y) < 1e-9 && s.referenceAntenna == 2) }
        if mode == .p { #expect(table.solutions.allSatisfy { s in s.gains.allSatisfy { abs(($0 * $0).sum() - 1) < 1e-9 } }) }
        let c = Self.compare(table, truth, mode: mode)
        #expect(c.compared == 2 * table.solutions.count, "no solution should be flagged here")
        if noise == 0 {
            #expect(c.maxError < 1e-4, "noise-free recovery error \(c.maxError)")
        } else {
            // Within the noise expectation: the rms error matches the estimated errors (to 2×),
            // and no solution is off by more than 5σ. (For phase, the error in radians ≈ paramErr/|g|.)
            #expect(c.rmsError < 2 * c.medianParamErr * 1.5, "rms \(c.rmsError) vs expected \(c.medianParamErr)")
            #expect(c.maxError < 5 * c.medianParamErr * 1.5 + 1e-3, "max \(c.maxError) vs expected \(c.medianParamErr)")
            #expect(c.rmsError > 0.2 * c.medianParamErr, "errors far below the noise: the error estimate is wrong")
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func flaggedAntennaGivesFlaggedSolutionsAndOthersAreGood() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let (ms, truth) = try Self.simulated(dir, seed: 11, noise: 0.05, flagged: [5])
        var o = SolveOptions()
        o.calMode = .ap
        let table = try GainSolver(options: o).solve(ms: ms)
        for s in table.solutions {
            #expect(s.flags == (s.antenna == 5 ? [true, true] : [false, false]))
        }
        let c = Self.compare(table, truth, mode: .ap, skip: [5])
        #expect(c.rmsError < 3 * c.medianParamErr)
        // Applying flags the data of the flagged solutions and calibrates the rest to the model.
        let summary = try GainApplier(tables: [table]).apply(to: ms)
        #expect(summary.rows == ms.rowCount)
        for chunk in try ms.rowChunks() {
            let v = try ms.read(chunk, dataColumn: "CORRECTED_DATA", extra: .flags)
            let m = try ms.read(chunk, dataColumn: "MODEL_DATA")
            for row in 0..<v.rowCount where v.antenna1[row] != v.antenna2[row] {
                let involves5 = v.antenna1[row] == 5 || v.antenna2[row] == 5
                #expect(v.flags[row * v.cellSize] == (involves5 ? 1 : 0))
                if !involves5 {
                    let k = 2 * row * v.cellSize
                    let d = SIMD2(Double(v.data[k] - m.data[k]), Double(v.data[k + 1] - m.data[k + 1]))
                    #expect((d * d).sum().squareRoot() < 0.5, "corrected differs from model by more than noise")
                }
            }
        }
    }

    /// Noise-free: CORRECTED_DATA = DATA / (g_p conj(g_q)) reproduces MODEL_DATA, and DATA is untouched.
    @Test(.timeLimit(.minutes(2)))
    func applyRecoversTheModelAndLeavesDataAlone() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let (ms, _) = try Self.simulated(dir, seed: 12, noise: 0, integrations: 6)
        let dataBefore = try ms.rowChunks().map { try ms.read($0, dataColumn: "DATA").data }
        var o = SolveOptions()
        o.calMode = .ap
        let table = try GainSolver(options: o).solve(ms: ms)
        let tpath = dir.appendingPathComponent("ap.G").path
        try table.write(to: tpath, msPath: ms.path)
        let back = try GainTable.read(path: tpath)
        try GainApplier(tables: [back]).apply(to: ms)
        var maxErr: Float = 0, maxAmp: Float = 0
        for (i, chunk) in try ms.rowChunks().enumerated() {
            let c = try ms.read(chunk, dataColumn: "CORRECTED_DATA")
            let m = try ms.read(chunk, dataColumn: "MODEL_DATA")
            let d = try ms.read(chunk, dataColumn: "DATA")
            #expect(d.data == dataBefore[i])
            for row in 0..<c.rowCount where c.antenna1[row] != c.antenna2[row] {
                for k in (2 * row * c.cellSize)..<(2 * (row + 1) * c.cellSize) {
                    maxErr = max(maxErr, abs(c.data[k] - m.data[k]))
                    maxAmp = max(maxAmp, abs(m.data[k]))
                }
            }
        }
        #expect(maxErr < 1e-4 * maxAmp, "max |CORRECTED − MODEL| = \(maxErr)")
    }

    /// A table solved on a multi-channel MS has one channel per SPW in its SPECTRAL_WINDOW (the
    /// mean frequency, the summed width), as CASA's gaincal writes it, and TIME in seconds: with a
    /// copy of the MS's 8-channel SPECTRAL_WINDOW, CASA's applycal aborts on the table.
    @Test(.timeLimit(.minutes(2)))
    func tableSpectralWindowHasOneChannelPerSPW() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let (ms, _) = try Self.simulated(dir, seed: 14, noise: 0.05, integrations: 3)
        let table = try GainSolver(options: SolveOptions()).solve(ms: ms)
        let tpath = dir.appendingPathComponent("p.G").path
        try table.write(to: tpath, msPath: ms.path)
        let freqs = ms.spectralWindows[0].frequencies
        #expect(freqs.count == 8)
        let spw = try CasaTable(path: tpath).subtable("SPECTRAL_WINDOW")
        #expect(try spw.ints("NUM_CHAN") == [1])
        #expect(try spw.cellShape("CHAN_FREQ", row: 0) == [1])
        let f = try spw.doubleCell("CHAN_FREQ", row: 0, maxElements: 1)[0]
        #expect(abs(f - freqs.reduce(0, +) / 8) < 1e-3)
        let width = try spw.doubleCell("CHAN_WIDTH", row: 0, maxElements: 1)[0]
        #expect(abs(width - 8 * (freqs[1] - freqs[0])) < 1e-3)
        let py = try TestSupport.python("""
            import casacore.tables as pt
            t = pt.table('\(tpath)', ack=False)
            assert list(t.getcolkeyword('TIME', 'QuantumUnits')) == ['s'], t.getcolkeyword('TIME', 'QuantumUnits')
            print('OK')
            """)
        #expect(py.output.contains("OK"), "\(py.output)")
        // Our own apply still reads the table.
        #expect(try GainTable.read(path: tpath).solutions.count == table.solutions.count)
    }

    /// Opt-in (needs CASA: `bench/setup-casa-venv.sh`, or SELFCAL_CASA_PYTHON): CASA's own
    /// `applycal` with a table we wrote gives the CORRECTED_DATA of our `apply`, on an 8-channel MS
    /// with a flagged antenna. The strongest check that CASA reads our tables as we mean them.
    @Test(.timeLimit(.minutes(3)), .enabled(if: TestSupport.casaPython != nil, "CASA venv absent: run bench/setup-casa-venv.sh"))
    func casaApplycalWithOurTableMatchesOurApply() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let (ms, _) = try Self.simulated(dir, seed: 15, noise: 0.05, flagged: [4], integrations: 5)
        var o = SolveOptions()
        o.calMode = .ap
        let table = try GainSolver(options: o).solve(ms: ms)
        let tpath = dir.appendingPathComponent("ap.G").path
        try table.write(to: tpath, msPath: ms.path)
        try GainApplier(tables: [GainTable.read(path: tpath)]).apply(to: ms)
        let chunks = try ms.rowChunks()
        let ours = try chunks.map { try ms.read($0, dataColumn: "CORRECTED_DATA", extra: .flags) }
        try ms.table.release()

        let r = try TestSupport.run(TestSupport.casaPython!, ["-c", """
            from casatasks import applycal
            applycal(vis='\(ms.path)', gaintable=['\(tpath)'], interp=['linear'], calwt=[False], flagbackup=False)
            print('APPLIED')
            """], timeout: 150, cwd: dir)
        #expect(r.output.contains("APPLIED"), "\(r.output.suffix(2000))")

        let fresh = try MeasurementSet(path: ms.path)
        var maxDiff: Float = 0, maxAmp: Float = 0, flagDiffs = 0
        for (i, chunk) in chunks.enumerated() {
            let c = try fresh.read(chunk, dataColumn: "CORRECTED_DATA", extra: .flags)
            for k in 0..<c.flags.count {
                if c.flags[k] != ours[i].flags[k] { flagDiffs += 1 }
                if c.flags[k] != 0 || ours[i].flags[k] != 0 { continue }
                for j in [2 * k, 2 * k + 1] {
                    maxDiff = max(maxDiff, abs(c.data[j] - ours[i].data[j]))
                    maxAmp = max(maxAmp, abs(ours[i].data[j]))
                }
            }
        }
        #expect(flagDiffs == 0, "FLAG differs in \(flagDiffs) samples")
        #expect(maxAmp > 0 && maxDiff <= 1e-5 * maxAmp, "max |CASA − ours| = \(maxDiff), largest value \(maxAmp)")
    }

    /// Pre-applying a phase table and solving ap on top gives the amplitude part of the truth.
    @Test(.timeLimit(.minutes(2)))
    func preApplyThenSolveOnTop() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let (ms, _) = try Self.simulated(dir, seed: 13, noise: 0, drift: 0)
        var p = SolveOptions()
        p.calMode = .p
        let phase = try GainSolver(options: p).solve(ms: ms)
        var a = SolveOptions()
        a.calMode = .ap
        a.solint = .infinite
        a.preApply = [phase]
        let amp = try GainSolver(options: a).solve(ms: ms)
        var direct = SolveOptions()
        direct.calMode = .ap
        direct.solint = .infinite
        let full = try GainSolver(options: direct).solve(ms: ms)
        // Combined (phase × amp) equals a direct ap solution.
        let combined = GainInterpolator(tables: [phase, amp]), one = GainInterpolator(tables: [full])
        let t = full.solutions[0].time
        for ant in 0..<16 {
            let g1 = combined.gain(spw: 0, antenna: ant, receptor: 0, time: t)!, g2 = one.gain(spw: 0, antenna: ant, receptor: 0, time: t)!
            #expect(abs((g1 * g1).sum().squareRoot() - (g2 * g2).sum().squareRoot()) < 1e-4)
        }
        // The amplitude table alone carries the amplitudes; its phases are near zero.
        for s in amp.solutions { #expect(abs(atan2(s.gains[0].y, s.gains[0].x)) < 1e-3) }
    }

    /// Real VLA data against CASA 6.7's gaincal solutions (phases within 2° rms), our table read
    /// back by python-casacore as a CASA cal table, and WSClean's image of CORRECTED_DATA going
    /// from dynamic range ≈ 9 to ≥ 500.
    @Test(.timeLimit(.minutes(4)))
    func realVLAAgreesWithCASAAndImagesWell() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let path = try TestSupport.vlaMS(in: dir)
        let ms = try MeasurementSet(path: path, mode: .readWrite)
        let f = ms.fields[0]
        try ModelPredictor(components: [SkyComponent(ra: f.ra, dec: f.dec, flux: 1)]).predict(into: ms)
        var o = SolveOptions()
        o.calMode = .p
        o.refant = "15"
        let table = try GainSolver(options: o).solve(ms: ms)
        let tpath = dir.appendingPathComponent("vla.G").path
        try table.write(to: tpath, msPath: path)

        // Phases against CASA's CSV.
        let csv = try String(contentsOf: TestSupport.fixtures.appendingPathComponent("casa_gaincal_p_int_cal1445avg_refant15.csv"), encoding: .utf8)
        var diffs: [Double] = []
        var casaFlagged = Set<Int>()
        for line in csv.split(separator: "\n").dropFirst() {
            let c = line.split(separator: ",").map(String.init)
            let t = Double(c[0])!, ant = Int(c[1])!, pol = Int(c[3])!, ph = Double(c[4])!
            if c[5] == "1" || c[5].lowercased() == "true" { casaFlagged.insert(ant); continue }
            guard let s = table.solutions.first(where: { $0.antenna == ant && abs($0.time - t) < 1 }) else {
                Issue.record("no solution for antenna \(ant) at \(t)")
                continue
            }
            #expect(!s.flags[pol])
            let ours = atan2(s.gains[pol].y, s.gains[pol].x) * 180 / .pi
            diffs.append(remainder(ours - ph, 360))
        }
        let rms = (diffs.map { $0 * $0 }.reduce(0, +) / Double(diffs.count)).squareRoot()
        #expect(diffs.count == 756)
        #expect(rms < 2, "phase rms vs CASA = \(rms)°")
        // The antenna CASA flagged (no data) is flagged by us too.
        for a in casaFlagged { #expect(table.solutions.filter { $0.antenna == a }.allSatisfy { $0.flags == [true, true] }) }

        // python-casacore sees a CASA calibration table.
        let py = try TestSupport.python("""
            import casacore.tables as pt
            t = pt.table('\(tpath)', ack=False)
            info = t.info(); kw = t.getkeywords()
            assert info['type'] == 'Calibration' and info['subType'] == 'G Jones', info
            for k in ('ParType', 'MSName', 'VisCal', 'PolBasis', 'ANTENNA', 'FIELD', 'SPECTRAL_WINDOW', 'OBSERVATION', 'HISTORY'):
                assert k in kw, k
            assert kw['VisCal'] == 'G Jones' and kw['ParType'] == 'Complex'
            for c in ('TIME', 'FIELD_ID', 'SPECTRAL_WINDOW_ID', 'ANTENNA1', 'ANTENNA2', 'INTERVAL', 'SCAN_NUMBER', 'OBSERVATION_ID', 'CPARAM', 'PARAMERR', 'FLAG', 'SNR', 'WEIGHT'):
                assert c in t.colnames(), c
            assert t.getcell('CPARAM', 0).shape == (1, 2), t.getcell('CPARAM', 0).shape
            assert t.nrows() == 392, t.nrows()
            assert pt.table(kw['ANTENNA'], ack=False).nrows() == 28
            assert t.getcolkeyword('TIME', 'MEASINFO')['Ref'] == 'UTC'
            print('OK')
            """)
        #expect(py.output.contains("OK"), "\(py.output)")

        try GainApplier(tables: [GainTable.read(path: tpath)]).apply(to: ms)
        guard TestSupport.which("wsclean") != nil else {
            Issue.record("wsclean is not installed (scripts/install-deps.sh installs it)")
            return
        }
        func dynamicRange(_ column: String) throws -> Double {
            let name = dir.appendingPathComponent("img-\(column)").path
            let r = try TestSupport.run("wsclean", ["-quiet", "-size", "512", "512", "-scale", "4asec", "-niter", "500", "-mgain", "0.8",
                                                    "-auto-threshold", "3", "-data-column", column, "-name", name, path], timeout: 240)
            #expect(r.status == 0, "\(r.output.suffix(1500))")
            let img = try FITSImage.read(path: name + "-image.fits")
            let px = img.pixels.filter { $0.isFinite }
            let med = px.sorted()[px.count / 2]
            let mad = px.map { abs($0 - med) }.sorted()[px.count / 2]
            return Double(px.max()!) / (1.4826 * Double(mad))
        }
        let before = try dynamicRange("DATA"), after = try dynamicRange("CORRECTED_DATA")
        #expect(before < 30, "uncalibrated dynamic range \(before)")
        #expect(after >= 500, "calibrated dynamic range \(after) (CASA reaches ≈ 980)")
    }

    /// The vectorised per-row sums (two hands, four channels a step, Float inside the row) against
    /// a plain Double evaluation of the same definitions, with flags, zero and negative weights,
    /// zero visibilities and a channel count that leaves a remainder, for both weight layouts and
    /// both calibration modes.
    @Test(arguments: [(CalMode.p, true), (CalMode.p, false), (CalMode.ap, true), (CalMode.ap, false)])
    func rowSumsMatchPlainSums(mode: CalMode, perChannel: Bool) {
        var rng = Xoshiro(seed: 99)
        func uniform() -> Float { Float(Double(rng.next() >> 11) / Double(1 << 53)) }
        for nchan in [1, 4, 7, 48, 51] {
            let n = nchan * 2
            let data = (0..<(2 * n)).map { k in k % 7 == 3 ? 0 : uniform() * 4 - 2 }
            let model = (0..<(2 * n)).map { _ in uniform() * 2 - 1 }
            let flags = (0..<n).map { _ in UInt8(uniform() < 0.2 ? 1 : 0) }
            let weights = (0..<(perChannel ? n : 2)).map { k in k % 11 == 5 ? (k % 2 == 0 ? 0 : -1) : uniform() + 0.5 }
            let s = GainSolver.rowSums(data: data, model: model, flags: flags, weights: weights, perChannel: perChannel,
                                       channels: nchan, phaseOnly: mode == .p)
            for r in 0..<2 {
                var re = 0.0, im = 0.0, b = 0.0, c = 0.0, count: Int32 = 0
                for ch in 0..<nchan {
                    let k = 2 * ch + r
                    let w = Double(perChannel ? weights[k] : weights[r])
                    var vr = Double(data[2 * k]), vi = Double(data[2 * k + 1])
                    let mr = Double(model[2 * k]), mi = Double(model[2 * k + 1])
                    guard flags[k] == 0, w > 0, mode == .ap || vr * vr + vi * vi > 0 else { continue }
                    if mode == .p {
                        let f = ((mr * mr + mi * mi) / (vr * vr + vi * vi)).squareRoot()
                        vr *= f; vi *= f
                    }
                    re += w * (vr * mr + vi * mi)
                    im += w * (vi * mr - vr * mi)
                    b += w * (mr * mr + mi * mi)
                    c += w * (vr * vr + vi * vi)
                    count += 1
                }
                #expect(s.n[r] == count, "nchan \(nchan) receptor \(r)")
                for (got, want) in [(s.re[r], re), (s.im[r], im), (s.b[r], b), (s.c[r], c)] {
                    #expect(abs(got - want) <= 1e-5 * max(1, abs(want)), "nchan \(nchan) receptor \(r): \(got) vs \(want)")
                }
            }
        }
    }

    /// CORRECTED_DATA and FLAG of every row, chunk by chunk.
    static func corrected(_ ms: MeasurementSet) throws -> (data: [Float], flags: [UInt8]) {
        var data: [Float] = [], flags: [UInt8] = []
        for c in try ms.rowChunks(targetRows: 500) {
            let v = try ms.read(c, dataColumn: "CORRECTED_DATA", extra: .flags)
            data += v.data
            flags += v.flags
        }
        return (data, flags)
    }

    /// Solving and applying in one call gives exactly what solving, writing the table, reading it
    /// back and applying it give (CORRECTED_DATA and FLAG identical to the bit), on two copies of
    /// one MS with a dead antenna and noise. With solint int every chunk of the time-ordered MS is
    /// corrected in the solving pass; with 60 s intervals (rows interpolated between solutions)
    /// none is, and a second pass does it. The amplitude case pre-applies a phase table, as the
    /// loop's amplitude rounds do.
    @Test(.timeLimit(.minutes(3)), arguments: [("int", CalMode.p), ("60s", CalMode.p), ("int", CalMode.ap)])
    func solveAndApplyEqualsSolveThenApply(solint: String, mode: CalMode) throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let (sim, _) = try Self.simulated(dir, seed: 21, noise: 0.3, flagged: [5])
        try sim.table.flush()
        try sim.table.release()
        let pathA = dir.appendingPathComponent("a.ms").path, pathB = dir.appendingPathComponent("b.ms").path
        try FileManager.default.copyItem(atPath: sim.path, toPath: pathA)
        try FileManager.default.copyItem(atPath: sim.path, toPath: pathB)
        let a = try MeasurementSet(path: pathA, mode: .readWrite), b = try MeasurementSet(path: pathB, mode: .readWrite)

        var o = SolveOptions()
        o.calMode = mode
        o.solint = try SolutionInterval(parsing: solint)
        o.refant = "3"
        var prior: [GainTable] = []
        if mode == .ap {
            var po = o
            po.calMode = .p
            let phasePath = dir.appendingPathComponent("phase.G").path
            try GainSolver(options: po).solve(ms: a).write(to: phasePath, msPath: pathA)
            prior = [try GainTable.read(path: phasePath)]
            o.preApply = prior
        }

        // Two steps, through the table on disk.
        let table = try GainSolver(options: o).solve(ms: a)
        let tablePath = dir.appendingPathComponent("new.G").path
        try table.write(to: tablePath, msPath: pathA)
        try GainApplier(tables: prior + [try GainTable.read(path: tablePath)]).apply(to: a)
        // One call.
        let r = try GainSolver(options: o).solveAndApply(ms: b, prior: prior)

        #expect(r.table.solutions.map(\.gains) == table.solutions.map(\.gains))
        #expect(r.table.solutions.map(\.flags) == table.solutions.map(\.flags))
        #expect(r.table.solutions.contains { $0.flags.contains(true) }, "the dead antenna's solutions are flagged")
        if solint == "int" {
            #expect(r.fusedRows == b.rowCount && r.secondPassRows == 0)
        } else {
            #expect(r.fusedRows == 0 && r.secondPassRows == b.rowCount)
        }
        let ca = try Self.corrected(a), cb = try Self.corrected(b)
        #expect(ca.data.count == a.rowCount * 2 * (try a.table.cellShape("DATA").reduce(1, *)))
        #expect(ca.flags == cb.flags)
        let mismatches = zip(ca.data, cb.data).filter { $0 != $1 }.count
        #expect(mismatches == 0, "\(mismatches) of \(ca.data.count) CORRECTED_DATA values differ")
        // And it calibrated something: the dead antenna is flagged, and unflagged cross-correlation
        // samples differ from DATA (the simulated gains are not 1; a phase-only correction leaves
        // autocorrelations as they were).
        #expect(ca.flags.contains(0) && ca.flags.contains(1))
        var data: [Float] = [], cross: [Bool] = []
        for c in try a.rowChunks(targetRows: 500) {
            let v = try a.read(c, dataColumn: "DATA")
            data += v.data
            for r in 0..<v.rowCount { cross += Array(repeating: v.antenna1[r] != v.antenna2[r], count: v.cellSize) }
        }
        let unflagged = ca.flags.indices.filter { ca.flags[$0] == 0 && cross[$0] }
        let unchanged = unflagged.filter { ca.data[2 * $0] == data[2 * $0] && ca.data[2 * $0 + 1] == data[2 * $0 + 1] }.count
        #expect(unchanged < unflagged.count / 100, "\(unchanged) of \(unflagged.count) unflagged samples left as DATA")
    }

    /// A chunk can be applied in the solving pass only when every cell of its rows ends inside it.
    @Test func chunksCompleteAtTheirEnd() {
        // Rows 0-5: cells A A B B C C in two chunks of three: B spans the cut.
        let keys = [0, 0, 1, 1, 2, 2].map { GainSolver.CellKey(interval: $0, spw: 0) }
        let chunks = [RowChunk(start: 0, count: 3, dataDescription: 0), RowChunk(start: 3, count: 3, dataDescription: 0)]
        #expect(GainSolver.chunksCompleteAtTheirEnd(chunks, key: { keys[$0] }) == [false, true])
        // Interleaved cells (as in a baseline-ordered MS): only the last chunk holds the ends.
        let interleaved = [0, 1, 2, 0, 1, 2].map { GainSolver.CellKey(interval: $0, spw: 0) }
        #expect(GainSolver.chunksCompleteAtTheirEnd(chunks, key: { interleaved[$0] }) == [false, true])
        let aligned = [0, 0, 0, 1, 1, 1].map { GainSolver.CellKey(interval: $0, spw: 0) }
        #expect(GainSolver.chunksCompleteAtTheirEnd(chunks, key: { aligned[$0] }) == [true, true])
    }
}
