import ArgumentParser
import Foundation
import Imaging
import SelfCal
import SelfCalSupport

struct Mask: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a FITS clean mask (for wsclean -fits-mask): 1 within --radius-arcsec of each catalog source, 0 elsewhere.")

    @Option(help: "The Measurement Set (its phase centre and frequency).") var ms: String
    @Option(help: "The catalog (NVSS FITS table, VizieR text table or WSClean/BBS source list).") var catalog: String
    @Option(help: "The mask to write.") var out: String
    @Option(help: "Image size in pixels (as WSClean's -size).") var imsize: Int
    @Option(name: .customLong("cell-arcsec"), help: "Pixel size in arcsec (as WSClean's -scale).") var cellArcsec: Double
    @Option(name: .customLong("radius-arcsec"), help: "Mask radius around each source (mask_radius_arcsec).") var radiusArcsec: Double = 60
    @Option(name: .customLong("min-mjy"), help: "Catalog flux limit, mJy (nvss_min_mjy).") var minMJy: Double = 10
    @Option(name: .customLong("radius-deg"), help: "Cone radius, degrees (default: the image's half-diagonal).") var radiusDeg: Double?
    @Option(name: .customLong("max-components"), help: "At most this many sources, brightest first.") var maxComponents: Int = 10000

    func run() async throws {
        try await runReportingErrors {
            if let radiusDeg, !(radiusDeg > 0 && radiusDeg <= 180) {
                throw PipelineError(.badConfig, "must be > 0 and ≤ 180 degrees (got \(radiusDeg))", context: "--radius-deg")
            }
            guard minMJy >= 0 else { throw PipelineError(.badConfig, "must be ≥ 0", context: "--min-mjy") }
            guard radiusArcsec > 0 else { throw PipelineError(.badConfig, "must be positive (got \(radiusArcsec))", context: "--radius-arcsec") }
            let m = try MeasurementSet(path: ms)
            let mask = try CleanMask(ms: m, size: imsize, cellArcsec: cellArcsec, radiusArcsec: radiusArcsec)
            let halfDiagonal = Double(imsize) * cellArcsec / 3600 * 0.5.squareRoot() * .pi / 180 + mask.radius
            let sel = ConeSelection(radius: radiusDeg.map { $0 * .pi / 180 } ?? min(.pi, halfDiagonal), minFlux: minMJy / 1e3, maxComponents: maxComponents)
            let model = try CatalogModel.build(ms: m, catalog: catalog, selection: sel, applyBeam: false)
            let inside = try mask.write(sources: model.components, to: out)
            say("wrote \(out): \(imsize)×\(imsize) at \(cellArcsec) arcsec, \(model.components.count) source(s) selected, \(inside) inside the image")
        }
    }
}
