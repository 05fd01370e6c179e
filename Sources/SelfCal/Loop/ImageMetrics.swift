import Foundation
import Imaging

/// How good an image is: the restored image's peak, the residual's robust rms, their ratio,
/// and how many clean components the model holds.
public struct ImageMetrics: Sendable, Codable, Equatable {
    public var peakJy: Double
    /// 1.4826 × the median absolute deviation of the residual image (robust to sources).
    public var rmsJy: Double
    public var snr: Double
    public var cleanComponents: Int

    public init(peakJy: Double, rmsJy: Double, cleanComponents: Int) {
        self.peakJy = peakJy
        self.rmsJy = rmsJy
        self.snr = rmsJy > 0 ? peakJy / rmsJy : 0
        self.cleanComponents = cleanComponents
    }

    /// Measures the WSClean outputs `<name>-image.fits`, `<name>-residual.fits`, `<name>-model.fits`.
    /// Without a residual (niter 0), the image itself is used for the rms.
    public static func measure(imagePrefix name: String) throws -> ImageMetrics {
        let image = try FITSImage.read(path: name + "-image.fits")
        let peak = image.pixels.lazy.filter { $0.isFinite }.max() ?? 0
        let residualPath = name + "-residual.fits"
        let residual = FileManager.default.fileExists(atPath: residualPath) ? try FITSImage.read(path: residualPath) : image
        let rms = robustRMS(residual.pixels)
        var components = 0
        if FileManager.default.fileExists(atPath: name + "-model.fits") {
            components = try FITSImage.read(path: name + "-model.fits").pixels.reduce(0) { $0 + ($1 != 0 && $1.isFinite ? 1 : 0) }
        }
        return ImageMetrics(peakJy: Double(peak), rmsJy: rms, cleanComponents: components)
    }

    /// 1.4826 · median(|x − median(x)|) over the finite values.
    public static func robustRMS(_ values: [Float]) -> Double {
        var v = values.filter { $0.isFinite }
        guard !v.isEmpty else { return 0 }
        v.sort()
        let med = v[v.count / 2]
        var dev = v.map { abs($0 - med) }
        dev.sort()
        return 1.4826 * Double(dev[dev.count / 2])
    }
}
