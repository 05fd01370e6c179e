import Foundation
import SelfCalSupport

/// The configuration of one self-calibration run. Keys follow DSA-110's `SelfCalConfig`
/// names; `configs/selfcal.schema.json` describes the JSON form.
public struct SelfCalConfig: Sendable, Codable, Equatable {
    public var ms: String?
    public var outputDir: String?
    public var field: Int = 0
    public var refant: String = "auto"
    public var maxIterations: Int = 5
    public var phaseSolints: [String] = ["300s", "120s", "60s"]
    public var phaseMinsnr: Double = 3
    public var doAmplitude: Bool = true
    public var ampSolint: String = "inf"
    public var ampMinsnr: Double = 5
    /// A round is accepted when its SNR ≥ the last accepted SNR × this ratio.
    public var minSnrImprovement: Double = 1.05
    public var stopOnDivergence: Bool = true
    public var minInitialSnr: Double = 5
    public var maxFlaggedFraction: Double = 0.5
    public var useNvssSeeding: Bool = false
    public var nvssCatalog: String?
    public var nvssMinMjy: Double = 10
    public var maskRadiusArcsec: Double = 60
    public var calibRaDeg: Double?
    public var calibDecDeg: Double?
    public var calibFluxJy: Double?
    public var predictMethod: String = "dft"
    public var imaging = Imaging()
    public var executor = Executor()

    public struct Imaging: Sendable, Codable, Equatable {
        public var imsize: Int = 1024
        /// nil: chosen from the longest baseline (a third of the finest fringe).
        public var cellArcsec: Double?
        public var niter: Int = 10000
        public var mgain: Double = 0.8
        public var autoThreshold: Double = 3
        public var autoMask: Double?
        public var robust: Double = 0
        /// "briggs" (with `robust`), "natural" or "uniform".
        public var weighting: String = "briggs"
        public var extraArgs: [String] = []
        public init() {}
    }

    public struct Mount: Sendable, Codable, Equatable {
        public var host: String
        public var container: String
    }

    public struct Executor: Sendable, Codable, Equatable {
        public var kind: String = "auto"
        public var wscleanPath: String?
        public var engine: String?
        public var image: String = "selfcal-wsclean:latest"
        public var mounts: [Mount] = []
        public var user: String = "host"
        public var timeoutS: Double = 3600
        public var stallTimeoutS: Double = 600
        public var graceS: Double = 10
        public init() {}

        enum CodingKeys: String, CodingKey {
            case kind, wscleanPath, engine, image, mounts, user, timeoutS, stallTimeoutS, graceS
        }
    }

    public init() {}

    /// Every key the file may hold, per object: the validator and the JSON Schema agree on these.
    public static let topLevelKeys = [
        "ms", "output_dir", "field", "refant", "max_iterations", "phase_solints", "phase_minsnr", "do_amplitude",
        "amp_solint", "amp_minsnr", "min_snr_improvement", "stop_on_divergence", "min_initial_snr",
        "max_flagged_fraction", "use_nvss_seeding", "nvss_catalog", "nvss_min_mjy", "mask_radius_arcsec",
        "calib_ra_deg", "calib_dec_deg", "calib_flux_jy", "predict_method", "imaging", "executor",
    ]
    public static let imagingKeys = ["imsize", "cell_arcsec", "niter", "mgain", "auto_threshold", "auto_mask", "robust", "weighting", "extra_args"]
    public static let executorKeys = ["kind", "wsclean_path", "engine", "image", "mounts", "user", "timeout_s", "stall_timeout_s", "grace_s"]

    /// Reads and validates a config file; every problem is `.badConfig` naming the key.
    public static func load(path: String) throws -> SelfCalConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PipelineError(.badConfig, "cannot read the config file (does it exist?)", context: path)
        }
        let obj: Any
        do {
            obj = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw PipelineError(.badConfig, "not valid JSON: \(jsonErrorDescription(error))", context: path)
        }
        guard let dict = obj as? [String: Any] else {
            throw PipelineError(.badConfig, "the config must be a JSON object", context: path)
        }
        do {
            return try parse(dict)
        } catch var e as PipelineError {
            e.context = "\(path): \(e.context ?? "")"
            throw e
        }
    }

    /// Builds a config from a JSON object, checking names, types and ranges.
    public static func parse(_ dict: [String: Any]) throws -> SelfCalConfig {
        var c = SelfCalConfig()
        let r = KeyReader(dict, prefix: "", known: topLevelKeys)
        try r.checkUnknown()
        c.ms = try r.string("ms")
        c.outputDir = try r.string("output_dir")
        c.field = try r.int("field", min: 0) ?? c.field
        if let v = dict["refant"] {
            if let s = v as? String { c.refant = s } else if let n = v as? NSNumber, !isBool(n), n.doubleValue == n.doubleValue.rounded() {
                c.refant = String(n.intValue)
            } else { throw PipelineError(.badConfig, "must be an antenna name, an index, or \"auto\"", context: "refant") }
        }
        c.maxIterations = try r.int("max_iterations", min: 1) ?? c.maxIterations
        c.phaseSolints = try r.strings("phase_solints") ?? c.phaseSolints
        for s in c.phaseSolints { _ = try SolutionInterval(parsing: s).description }
        c.phaseMinsnr = try r.double("phase_minsnr", min: 0) ?? c.phaseMinsnr
        c.doAmplitude = try r.bool("do_amplitude") ?? c.doAmplitude
        c.ampSolint = try r.string("amp_solint") ?? c.ampSolint
        _ = try SolutionInterval(parsing: c.ampSolint)
        c.ampMinsnr = try r.double("amp_minsnr", min: 0) ?? c.ampMinsnr
        c.minSnrImprovement = try r.double("min_snr_improvement", min: 0) ?? c.minSnrImprovement
        c.stopOnDivergence = try r.bool("stop_on_divergence") ?? c.stopOnDivergence
        c.minInitialSnr = try r.double("min_initial_snr", min: 0) ?? c.minInitialSnr
        c.maxFlaggedFraction = try r.double("max_flagged_fraction", min: 0, max: 1) ?? c.maxFlaggedFraction
        c.useNvssSeeding = try r.bool("use_nvss_seeding") ?? c.useNvssSeeding
        c.nvssCatalog = try r.string("nvss_catalog")
        c.nvssMinMjy = try r.double("nvss_min_mjy", min: 0) ?? c.nvssMinMjy
        c.maskRadiusArcsec = try r.double("mask_radius_arcsec", min: 0, exclusiveMin: true) ?? c.maskRadiusArcsec
        c.calibRaDeg = try r.double("calib_ra_deg", min: -360, max: 360)
        c.calibDecDeg = try r.double("calib_dec_deg", min: -90, max: 90)
        c.calibFluxJy = try r.double("calib_flux_jy", min: 0, exclusiveMin: true)
        c.predictMethod = try r.string("predict_method") ?? c.predictMethod
        guard ["dft", "wsclean"].contains(c.predictMethod) else {
            throw PipelineError(.badConfig, "must be \"dft\" or \"wsclean\", not \"\(c.predictMethod)\"", context: "predict_method")
        }
        if (c.calibRaDeg == nil) != (c.calibDecDeg == nil) {
            throw PipelineError(.badConfig, "give both calib_ra_deg and calib_dec_deg, or neither (a point at the phase centre)", context: c.calibRaDeg == nil ? "calib_ra_deg" : "calib_dec_deg")
        }
        if let im = try r.object("imaging") {
            let ir = KeyReader(im, prefix: "imaging.", known: imagingKeys)
            try ir.checkUnknown()
            c.imaging.imsize = try ir.int("imsize", min: 16, max: 65536) ?? c.imaging.imsize
            c.imaging.cellArcsec = try ir.double("cell_arcsec", min: 0, exclusiveMin: true)
            c.imaging.niter = try ir.int("niter", min: 0) ?? c.imaging.niter
            c.imaging.mgain = try ir.double("mgain", min: 0, max: 1, exclusiveMin: true) ?? c.imaging.mgain
            c.imaging.autoThreshold = try ir.double("auto_threshold", min: 0) ?? c.imaging.autoThreshold
            c.imaging.autoMask = try ir.double("auto_mask", min: 0)
            c.imaging.robust = try ir.double("robust", min: -2, max: 2) ?? c.imaging.robust
            c.imaging.weighting = try ir.string("weighting") ?? c.imaging.weighting
            guard ["briggs", "natural", "uniform"].contains(c.imaging.weighting) else {
                throw PipelineError(.badConfig, "must be \"briggs\", \"natural\" or \"uniform\"", context: "imaging.weighting")
            }
            c.imaging.extraArgs = try ir.strings("extra_args") ?? []
        }
        if let ex = try r.object("executor") {
            let er = KeyReader(ex, prefix: "executor.", known: executorKeys)
            try er.checkUnknown()
            c.executor.kind = try er.string("kind") ?? c.executor.kind
            guard ["auto", "native", "container"].contains(c.executor.kind) else {
                throw PipelineError(.badConfig, "must be \"auto\", \"native\" or \"container\"", context: "executor.kind")
            }
            c.executor.wscleanPath = try er.string("wsclean_path")
            c.executor.engine = try er.string("engine")
            if let e = c.executor.engine, !["docker", "podman"].contains(e) {
                throw PipelineError(.badConfig, "must be \"docker\" or \"podman\"", context: "executor.engine")
            }
            c.executor.image = try er.string("image") ?? c.executor.image
            c.executor.user = try er.string("user") ?? c.executor.user
            c.executor.timeoutS = try er.double("timeout_s", min: 0, exclusiveMin: true) ?? c.executor.timeoutS
            c.executor.stallTimeoutS = try er.double("stall_timeout_s", min: 0, exclusiveMin: true) ?? c.executor.stallTimeoutS
            c.executor.graceS = try er.double("grace_s", min: 0) ?? c.executor.graceS
            if let mounts = ex["mounts"] {
                guard let list = mounts as? [[String: Any]] else {
                    throw PipelineError(.badConfig, "must be a list of {\"host\": ..., \"container\": ...}", context: "executor.mounts")
                }
                c.executor.mounts = try list.enumerated().map { i, m in
                    let mr = KeyReader(m, prefix: "executor.mounts[\(i)].", known: ["host", "container"])
                    try mr.checkUnknown()
                    guard let h = try mr.string("host"), let ct = try mr.string("container"), h.hasPrefix("/"), ct.hasPrefix("/") else {
                        throw PipelineError(.badConfig, "each mount needs absolute \"host\" and \"container\" paths", context: "executor.mounts[\(i)]")
                    }
                    return Mount(host: h, container: ct)
                }
            }
        }
        if c.executor.kind == "container" && c.executor.engine == nil {
            throw PipelineError(.badConfig, "executor kind \"container\" needs an engine: set executor.engine to \"docker\" or \"podman\"", context: "executor.engine")
        }
        return c
    }

    /// Phase solints then the amplitude round, capped at `maxIterations`.
    public var plannedRounds: [(calMode: CalMode, solint: String)] {
        var r = phaseSolints.map { (CalMode.p, $0) }
        if doAmplitude { r.append((.ap, ampSolint)) }
        return Array(r.prefix(maxIterations))
    }
}

/// Reads typed values from a JSON object, naming the key in every error.
struct KeyReader {
    let dict: [String: Any]
    let prefix: String
    let known: [String]

    init(_ dict: [String: Any], prefix: String, known: [String]) {
        self.dict = dict
        self.prefix = prefix
        self.known = known
    }

    func checkUnknown() throws {
        for key in dict.keys.sorted() where !known.contains(key) {
            let best = known.min { editDistance($0, key) < editDistance($1, key) }
            var msg = "unknown key"
            if let best, editDistance(best, key) <= max(2, key.count / 3) { msg += "; did you mean \"\(prefix)\(best)\"?" }
            else { msg += "; known keys here: \(known.joined(separator: ", "))" }
            throw PipelineError(.badConfig, msg, context: prefix + key)
        }
    }

    private func value(_ key: String) -> Any? {
        guard let v = dict[key], !(v is NSNull) else { return nil }
        return v
    }

    func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v as? String else { throw typeError(key, "a string", v) }
        return s
    }

    func strings(_ key: String) throws -> [String]? {
        guard let v = value(key) else { return nil }
        guard let a = v as? [Any], let s = a as? [String] else { throw typeError(key, "a list of strings", v) }
        return s
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        guard let n = v as? NSNumber, isBool(n) else { throw typeError(key, "true or false", v) }
        return n.boolValue
    }

    func double(_ key: String, min: Double? = nil, max: Double? = nil, exclusiveMin: Bool = false) throws -> Double? {
        guard let v = value(key) else { return nil }
        guard let n = v as? NSNumber, !isBool(n), n.doubleValue.isFinite else { throw typeError(key, "a number", v) }
        let d = n.doubleValue
        if let min, exclusiveMin ? d <= min : d < min {
            throw PipelineError(.badConfig, "must be \(exclusiveMin ? ">" : "≥") \(fmt(min)), got \(fmt(d))", context: prefix + key)
        }
        if let max, d > max { throw PipelineError(.badConfig, "must be ≤ \(fmt(max)), got \(fmt(d))", context: prefix + key) }
        return d
    }

    func int(_ key: String, min: Int? = nil, max: Int? = nil) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard let n = v as? NSNumber, !isBool(n), n.doubleValue == n.doubleValue.rounded(), abs(n.doubleValue) < 1e15 else {
            throw typeError(key, "an integer", v)
        }
        let i = n.intValue
        if let min, i < min { throw PipelineError(.badConfig, "must be ≥ \(min), got \(i)", context: prefix + key) }
        if let max, i > max { throw PipelineError(.badConfig, "must be ≤ \(max), got \(i)", context: prefix + key) }
        return i
    }

    func object(_ key: String) throws -> [String: Any]? {
        guard let v = value(key) else { return nil }
        guard let o = v as? [String: Any] else { throw typeError(key, "an object", v) }
        return o
    }

    private func typeError(_ key: String, _ expected: String, _ v: Any) -> PipelineError {
        PipelineError(.badConfig, "must be \(expected), got \(describe(v))", context: prefix + key)
    }

    private func fmt(_ d: Double) -> String { d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d) }
}

func isBool(_ n: NSNumber) -> Bool {
    String(cString: n.objCType) == "c"
}

private func describe(_ v: Any) -> String {
    switch v {
    case let s as String: return "the string \"\(s)\""
    case let n as NSNumber: return isBool(n) ? (n.boolValue ? "true" : "false") : "\(n)"
    case is [Any]: return "a list"
    case is [String: Any]: return "an object"
    default: return "\(v)"
    }
}

private func jsonErrorDescription(_ e: Error) -> String {
    let ns = e as NSError
    return (ns.userInfo[NSDebugDescriptionErrorKey] as? String) ?? ns.localizedDescription
}

/// Levenshtein distance, for "did you mean" suggestions.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var prev = Array(0...b.count), cur = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        cur[0] = i
        for j in 1...b.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&prev, &cur)
    }
    return prev[b.count]
}
