import Foundation
import Imaging
import Logging
import SelfCalSupport

/// The one builder of the loop's WSClean calls: the initial image, each round's image, the
/// rollback's predict and `selfcal run --dry-run` all take their options from here, so the plan
/// printed is the command the run executes.
public struct ImagingCall: Sendable {
    public var config: SelfCalConfig
    /// Pixels per side and cell size (arcsec), from the config or the MS's longest baseline.
    public var size: Int
    public var cellArcsec: Double
    /// Spectral windows in the MS: WSClean 3.1 predicts several into one output channel only
    /// with `-reorder`.
    public var spectralWindows: Int

    public init(config: SelfCalConfig, size: Int, cellArcsec: Double, spectralWindows: Int) {
        self.config = config
        self.size = size
        self.cellArcsec = cellArcsec
        self.spectralWindows = spectralWindows
    }

    /// The geometry for `ms`: the config's cell, or a third of the finest fringe (λ_min / B_max).
    ///
    /// Throws `.badInput` when every baseline has zero length.
    public init(config: SelfCalConfig, ms: MeasurementSet, logger: Logger? = nil) throws {
        let spws = ms.spectralWindows.count
        if let c = config.imaging.cellArcsec {
            self.init(config: config, size: config.imaging.imsize, cellArcsec: c, spectralWindows: spws)
            return
        }
        var maxB = 0.0
        for chunk in try ms.rowChunks(targetRows: 200_000) {
            let v = try ms.read(chunk, dataColumn: nil, extra: .uvw)
            for r in 0..<v.rowCount {
                let u = v.uvw[3 * r], w = v.uvw[3 * r + 1]
                maxB = max(maxB, (u * u + w * w).squareRoot())
            }
        }
        try ms.table.release()
        let fmax = ms.spectralWindows.flatMap(\.frequencies).max() ?? 1.4e9
        guard maxB > 0 else { throw PipelineError(.badInput, "all baselines have zero length", context: ms.path) }
        let cell = speedOfLight / fmax / maxB / 3 * 180 / .pi * 3600
        logger?.info("cell size \(String(format: "%.2f", cell))\" from the longest baseline (\(Int(maxB)) m)")
        self.init(config: config, size: config.imaging.imsize, cellArcsec: (cell * 100).rounded(.down) / 100,
                  spectralWindows: spws)
    }

    /// An imaging call of `column` with images named `prefix-*.fits`, temporaries beside them.
    public func image(prefix: String, column: String, updateModel: Bool, mask: String?) -> WSCleanOptions {
        var o = WSCleanOptions(name: prefix, size: size, scaleArcsec: cellArcsec)
        o.niter = config.imaging.niter
        o.mgain = config.imaging.mgain
        o.autoThreshold = config.imaging.autoThreshold
        o.autoMask = config.imaging.autoMask
        switch config.imaging.weighting {
        case "natural": o.weighting = .natural
        case "uniform": o.weighting = .uniform
        default: o.weighting = .briggs(config.imaging.robust)
        }
        o.dataColumn = column
        o.field = config.field
        o.threads = ProcessInfo.processInfo.activeProcessorCount
        o.extraArguments = config.imaging.extraArgs
        o.fitsMask = mask
        o.tempDirectory = (prefix as NSString).deletingLastPathComponent
        o.updateModel = updateModel
        return o
    }

    /// A predict of `prefix-model.fits` into MODEL_DATA (a rollback to an accepted model).
    public func predict(prefix: String) -> WSCleanOptions {
        var o = image(prefix: prefix, column: "DATA", updateModel: true, mask: nil)
        o.predict = true
        o.dataColumn = nil
        if spectralWindows > 1 && !o.extraArguments.contains("-reorder") { o.extraArguments.append("-reorder") }
        return o
    }

    /// Where the catalog clean mask of a run in `outputDir` is written.
    public static func maskPath(outputDir: String) -> String {
        (outputDir as NSString).appendingPathComponent("mask.fits")
    }

    /// The directory of round `i` in `outputDir`.
    public static func roundDirectory(_ i: Int, outputDir: String) -> String {
        (outputDir as NSString).appendingPathComponent(String(format: "round-%02d", i))
    }
}
