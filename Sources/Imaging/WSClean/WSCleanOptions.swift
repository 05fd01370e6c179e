import Foundation
import SelfCalSupport

/// The WSClean options selfcal uses, as typed values that render to an argument array
/// (never a shell string). Mirrors WSClean 3.1's command line.
public struct WSCleanOptions: Sendable, Equatable {
    public enum Weighting: Sendable, Equatable {
        case natural
        case uniform
        case briggs(Double)
    }

    /// Output name prefix (`-name`): images are `<name>-image.fits`, `<name>-model.fits`, ...
    public var name: String
    public var size: (width: Int, height: Int)
    public var scaleArcsec: Double
    public var niter: Int = 0
    public var mgain: Double? = 0.8
    public var gain: Double? = nil
    public var autoThreshold: Double? = 3
    public var autoMask: Double? = nil
    public var threshold: Double? = nil
    public var fitsMask: String? = nil
    public var weighting: Weighting = .briggs(0)
    public var dataColumn: String? = nil
    /// `-predict`: fill MODEL_DATA from `<name>-model.fits` instead of imaging.
    public var predict = false
    public var channelsOut: Int? = nil
    public var joinChannels = false
    public var threads: Int? = nil
    public var absMemGB: Double? = nil
    public var parallelGridding: Int? = nil
    public var field: Int? = nil
    /// `-beam-size` in arcsec: small arrays can fit a wrong restoring beam.
    public var beamSizeArcsec: Double? = nil
    public var noDirty = false
    /// `-temp-dir`: where WSClean reorders (default: beside the MS). One per call keeps a
    /// killed call's leftovers away from the next.
    public var tempDirectory: String? = nil
    /// false: `-no-update-model-required` (MODEL_DATA is left as it was).
    public var updateModel = true
    public var quiet = false
    public var extraArguments: [String] = []

    public init(name: String, size: Int, scaleArcsec: Double) {
        self.name = name
        self.size = (size, size)
        self.scaleArcsec = scaleArcsec
    }

    public static func == (a: WSCleanOptions, b: WSCleanOptions) -> Bool {
        a.arguments(measurementSets: []) == b.arguments(measurementSets: [])
    }

    /// Checks values WSClean would reject or misread; throws `.badConfig` naming the option.
    public func validate() throws(PipelineError) {
        if size.width <= 0 || size.height <= 0 { throw PipelineError(.badConfig, "image size must be positive", context: "imaging.imsize") }
        if !(scaleArcsec > 0) { throw PipelineError(.badConfig, "cell size must be positive", context: "imaging.cell_arcsec") }
        if niter < 0 { throw PipelineError(.badConfig, "niter must be ≥ 0", context: "imaging.niter") }
        if let m = mgain, !(m > 0 && m <= 1) { throw PipelineError(.badConfig, "mgain must be in (0, 1]", context: "imaging.mgain") }
        if name.isEmpty { throw PipelineError(.badConfig, "an output name is required", context: "-name") }
    }

    /// The argument array (after the program name), with the MS paths last.
    public func arguments(measurementSets: [String]) -> [String] {
        var a: [String] = []
        if quiet { a.append("-quiet") }
        if predict {
            a += ["-predict"]
        }
        a += ["-name", name, "-size", String(size.width), String(size.height), "-scale", "\(format(scaleArcsec))asec"]
        if !predict {
            a += ["-niter", String(niter)]
            if let mgain { a += ["-mgain", format(mgain)] }
            if let gain { a += ["-gain", format(gain)] }
            if let autoThreshold { a += ["-auto-threshold", format(autoThreshold)] }
            if let autoMask { a += ["-auto-mask", format(autoMask)] }
            if let threshold { a += ["-threshold", format(threshold)] }
            if let fitsMask { a += ["-fits-mask", fitsMask] }
            switch weighting {
            case .natural: a += ["-weight", "natural"]
            case .uniform: a += ["-weight", "uniform"]
            case .briggs(let r): a += ["-weight", "briggs", format(r)]
            }
            if let beamSizeArcsec { a += ["-beam-size", format(beamSizeArcsec)] }
            if noDirty { a.append("-no-dirty") }
            if !updateModel { a.append("-no-update-model-required") }
        }
        if let dataColumn { a += ["-data-column", dataColumn] }
        if let channelsOut { a += ["-channels-out", String(channelsOut)] }
        if joinChannels { a.append("-join-channels") }
        if let threads { a += ["-j", String(threads)] }
        if let absMemGB { a += ["-abs-mem", format(absMemGB)] }
        if let parallelGridding { a += ["-parallel-gridding", String(parallelGridding)] }
        if let field { a += ["-field", String(field)] }
        if let tempDirectory { a += ["-temp-dir", tempDirectory] }
        a += extraArguments
        a += measurementSets
        return a
    }

    /// Every path the call reads or writes besides the MS: the name prefix's directory and the mask.
    public var paths: [String] {
        [(name as NSString).deletingLastPathComponent] + (fitsMask.map { [$0] } ?? [])
    }

    private func format(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x)
    }
}
