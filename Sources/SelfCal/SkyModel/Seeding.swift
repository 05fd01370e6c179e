import Dispatch
import Foundation
import Imaging
import Logging
import SelfCalSupport

/// How MODEL_DATA is predicted.
public enum PredictMethod: String, Sendable, Codable, CaseIterable {
    /// selfcal's own direct Fourier evaluation (`ModelPredictor`).
    case dft
    /// A model image and `wsclean -predict` (`WSCleanPredictor`).
    case wsclean
}

/// The calibrator model of the config (`calib_ra_deg`, `calib_dec_deg`, `calib_flux_jy`): a
/// point at that J2000 position, or at the phase centre when only a flux is given.
public struct CalibratorModel: Sendable, Codable, Equatable {
    public var raDeg: Double?
    public var decDeg: Double?
    public var fluxJy: Double

    public init(raDeg: Double? = nil, decDeg: Double? = nil, fluxJy: Double) {
        self.raDeg = raDeg
        self.decDeg = decDeg
        self.fluxJy = fluxJy
    }

    /// Throws `.badConfig` naming the key: a non-positive or NaN flux, only one of RA/Dec, a
    /// Dec beyond ±90°.
    public func validate() throws(PipelineError) {
        guard fluxJy > 0, fluxJy.isFinite else { throw PipelineError(.badConfig, "must be a positive flux in Jy (got \(fluxJy))", context: "calib_flux_jy") }
        if (raDeg == nil) != (decDeg == nil) {
            throw PipelineError(.badConfig, "give both calib_ra_deg and calib_dec_deg, or neither (a point at the phase centre)", context: raDeg == nil ? "calib_ra_deg" : "calib_dec_deg")
        }
        if let r = raDeg, !r.isFinite { throw PipelineError(.badConfig, "must be a finite RA in degrees", context: "calib_ra_deg") }
        if let d = decDeg, !(d.isFinite && abs(d) <= 90) { throw PipelineError(.badConfig, "must be a Dec within ±90°", context: "calib_dec_deg") }
    }

    /// The component, placed at `phaseCentre` (J2000 radians) when no position is given.
    public func component(phaseCentre: (ra: Double, dec: Double)) -> SkyComponent {
        SkyComponent(name: "calibrator", ra: raDeg.map { $0 * .pi / 180 } ?? phaseCentre.ra,
                     dec: decDeg.map { $0 * .pi / 180 } ?? phaseCentre.dec, flux: fluxJy)
    }
}

/// What MODEL_DATA is seeded with and how: the config's seeding keys as one value.
public struct SeedingOptions: Sendable {
    /// `use_nvss_seeding`.
    public var useCatalog = false
    /// `nvss_catalog`.
    public var catalogPath: String?
    public var catalogFormat: CatalogFormat?
    /// nil → by format (`.nvss` for FITS).
    public var catalogColumns: CatalogColumns?
    /// Radius (nil → primary beam's first null), `nvss_min_mjy` (in Jy here), cap.
    public var selection = ConeSelection(radius: nil, minFlux: 0.010, maxComponents: 500)
    /// `calib_*`; nil when the config gives no calibrator.
    public var calibrator: CalibratorModel?
    /// `predict_method`.
    public var method: PredictMethod = .dft
    /// The whole catalog seeding step (read, select, predict) must end within this; then the
    /// calibrator model is used.
    public var timeout: Duration = .seconds(900)
    /// Attenuate by the Airy beam of the MS's dishes (catalog fluxes are intrinsic).
    public var applyPrimaryBeam = true
    /// Catalog components this close to the calibrator are replaced by it (radians).
    public var calibratorMatchRadius = 60.0 / 3600 * .pi / 180
    /// WSClean path geometry.
    public var wscleanGeometry = PredictImageGeometry()
    /// Native predict threads (nil → all cores).
    public var threads: Int?

    public init() {}

    /// Throws `.badConfig` naming the key for settings that can never work.
    public func validate() throws(PipelineError) {
        try selection.validate()
        try calibrator?.validate()
        if !useCatalog && calibrator == nil {
            throw PipelineError(.badConfig, "with use_nvss_seeding false the calibrator model is used: set calib_flux_jy (and calib_ra_deg/calib_dec_deg unless the calibrator is at the phase centre)", context: "calib_flux_jy")
        }
        if useCatalog && (catalogPath ?? "").isEmpty && calibrator == nil {
            throw PipelineError(.badConfig, "use_nvss_seeding is true but no nvss_catalog is given, and there is no calibrator to fall back to", context: "nvss_catalog")
        }
        if timeout <= .zero { throw PipelineError(.badConfig, "the seeding timeout must be positive", context: "executor.timeout_s") }
    }
}

/// What seeding did, for the log and the report (`report.json`'s `seeding`).
public struct SeedingRecord: Sendable, Codable, Equatable {
    public enum Model: String, Sendable, Codable {
        case catalog
        case catalogAndCalibrator = "catalog+calibrator"
        case calibrator
    }

    /// The model that is in MODEL_DATA now.
    public var model: Model
    /// How it was predicted.
    public var method: PredictMethod
    public var catalogRequested: Bool
    public var catalogPath: String?
    /// Components in the model, and how many came from the catalog.
    public var components: Int
    public var catalogComponents: Int
    public var calibratorIncluded: Bool
    /// Catalog components dropped because the calibrator stands at their place.
    public var catalogComponentsReplaced: Int
    public var radiusDeg: Double?
    public var minFluxMJy: Double
    /// True when the catalog was asked for but the calibrator model was used.
    public var fallback: Bool
    /// Why (set with `fallback`).
    public var fallbackReason: String?
    public var seconds: Double
    /// The clean mask made from the selected catalog sources (set by the loop), if any.
    public var mask: String?

    /// The catalog whose sources are in the model (nil for the calibrator model).
    public var catalog: String? { model == .calibrator ? nil : catalogPath }

    /// A record of a calibrator-only model (for reports of runs that never seeded from a catalog).
    public static func calibratorOnly(components: Int = 1) -> SeedingRecord {
        SeedingRecord(model: .calibrator, method: .dft, catalogRequested: false, catalogPath: nil, components: components,
                      catalogComponents: 0, calibratorIncluded: true, catalogComponentsReplaced: 0, radiusDeg: nil,
                      minFluxMJy: 0, fallback: false, fallbackReason: nil, seconds: 0, mask: nil)
    }
}

/// Seeds MODEL_DATA: the catalog model (merged with the calibrator into one model, written by
/// one predict) when `use_nvss_seeding` is on and it works; otherwise the calibrator model,
/// with the reason recorded and logged as a warning. The catalog step runs under a deadline
/// that really fires: a hung WSClean is killed, a native predict stops between chunks.
/// The fallback always uses the native predict.
public struct Seeder: Sendable {
    public var options: SeedingOptions
    /// For `predict_method: wsclean`.
    public var executor: (any WSCleanExecutor)?
    /// Where the WSClean path writes its model images and log.
    public var workDirectory: URL
    public var logger: Logger

    public init(options: SeedingOptions, executor: (any WSCleanExecutor)? = nil, workDirectory: URL,
                logger: Logger = Logger(label: "selfcal.seeding")) {
        self.options = options
        self.executor = executor
        self.workDirectory = workDirectory
        self.logger = logger
    }

    /// Seeds MODEL_DATA of `msPath`.
    ///
    /// Throws `.badConfig` for invalid options (or a catalog failure with no calibrator to fall
    /// back to), `.badInput` when the MS cannot be opened for writing, `.interrupted` when
    /// cancelled from outside.
    public func seed(msPath: String) async throws(PipelineError) -> SeedingRecord {
        let start = Date()
        try options.validate()
        if options.method == .wsclean && options.useCatalog && executor == nil {
            throw PipelineError(.badConfig, "predict_method wsclean needs a WSClean executor", context: "predict_method")
        }
        var reason: String?
        if options.useCatalog {
            if let path = options.catalogPath, !path.isEmpty {
                do {
                    var record = try await withDeadline(options.timeout) { flag in try await self.seedFromCatalog(msPath: msPath, catalog: path, flag: flag) }
                    record.seconds = Date().timeIntervalSince(start)
                    logger.info("seeded MODEL_DATA with \(record.components) component(s) (\(record.model.rawValue), \(record.method.rawValue)) in \(String(format: "%.1f", record.seconds)) s")
                    return record
                } catch let e as SeedingTimeout {
                    reason = "the catalog seeding step did not finish within \(e.limit) and was stopped"
                } catch let e as PipelineError where e.code == .interrupted {
                    throw e
                } catch let e as NoCatalogSources {
                    reason = e.message
                } catch let e as PipelineError {
                    reason = "catalog seeding failed: \(e.description)"
                } catch {
                    reason = "catalog seeding failed: \(error)"
                }
            } else {
                reason = "no catalog is configured (nvss_catalog)"
            }
        }
        guard let calibrator = options.calibrator else {
            throw PipelineError(.badConfig, "\(reason ?? "no model"); and there is no calibrator model to fall back to (set calib_flux_jy)", context: "calib_flux_jy")
        }
        if let reason { logger.warning("falling back to the calibrator model: \(reason)") }
        let ms: MeasurementSet
        do { ms = try MeasurementSet(path: msPath, mode: .readWrite) } catch let e as PipelineError { throw e } catch {
            throw PipelineError(.badInput, "\(error)", context: msPath)
        }
        do {
            let ref = try PhaseReference(ms: ms)
            let comp = calibrator.component(phaseCentre: ref.centreJ2000)
            let beam = options.applyPrimaryBeam ? AiryBeam.of(ms) : nil
            try ModelPredictor(components: [comp], primaryBeam: beam, threads: options.threads, logger: logger).predict(into: ms)
        } catch let e as PipelineError { throw e } catch {
            throw PipelineError(.badInput, "\(error)", context: msPath)
        }
        let record = SeedingRecord(model: .calibrator, method: .dft, catalogRequested: options.useCatalog,
                                   catalogPath: options.catalogPath, components: 1, catalogComponents: 0, calibratorIncluded: true,
                                   catalogComponentsReplaced: 0, radiusDeg: nil, minFluxMJy: options.selection.minFlux * 1e3,
                                   fallback: options.useCatalog, fallbackReason: reason, seconds: Date().timeIntervalSince(start))
        logger.info("seeded MODEL_DATA with the calibrator model (\(calibrator.fluxJy) Jy)")
        return record
    }

    struct NoCatalogSources: Error { var message: String }

    /// The catalog model: select, merge with the calibrator, predict.
    func seedFromCatalog(msPath: String, catalog: String, flag: CancellationFlag) async throws -> SeedingRecord {
        let sel = try await runBlocking(flag) { () throws -> CatalogModel in
            let ms = try MeasurementSet(path: msPath)
            return try CatalogModel.build(ms: ms, catalog: catalog, format: self.options.catalogFormat, columns: self.options.catalogColumns,
                                          selection: self.options.selection, calibrator: self.options.calibrator,
                                          applyBeam: self.options.applyPrimaryBeam, matchRadius: self.options.calibratorMatchRadius)
        }
        guard sel.catalogCount > 0 else {
            throw NoCatalogSources(message: "the catalog has no source above \(options.selection.minFlux * 1e3) mJy within \(String(format: "%.3f", sel.radius * 180 / .pi))° of the phase centre")
        }
        switch options.method {
        case .dft:
            try await runBlocking(flag) { () throws -> Void in
                let ms = try MeasurementSet(path: msPath, mode: .readWrite)
                var p = ModelPredictor(components: sel.components, primaryBeam: sel.beam, threads: self.options.threads, logger: self.logger)
                p.isCancelled = { flag.isCancelled }
                try p.predict(into: ms)
            }
        case .wsclean:
            guard let executor else { throw PipelineError(.badConfig, "predict_method wsclean needs a WSClean executor", context: "predict_method") }
            let w = WSCleanPredictor(components: sel.components, primaryBeam: sel.beam, executor: executor, workDirectory: workDirectory,
                                     geometry: options.wscleanGeometry, logger: logger)
            _ = try await w.predict(msPath: msPath)
        }
        return SeedingRecord(model: sel.calibratorIncluded ? .catalogAndCalibrator : .catalog, method: options.method,
                             catalogRequested: true, catalogPath: catalog, components: sel.components.count,
                             catalogComponents: sel.catalogCount, calibratorIncluded: sel.calibratorIncluded,
                             catalogComponentsReplaced: sel.replaced, radiusDeg: sel.radius * 180 / .pi,
                             minFluxMJy: options.selection.minFlux * 1e3, fallback: false, fallbackReason: nil, seconds: 0)
    }
}

/// A catalog model for one MS: the selected components, merged with the calibrator.
public struct CatalogModel: Sendable {
    public var components: [SkyComponent]
    public var catalogCount: Int
    public var calibratorIncluded: Bool
    public var replaced: Int
    /// The cone radius used, radians.
    public var radius: Double
    public var beam: AiryBeam?
    /// Time to get the catalog index (read and sort, cache file, or memory) and to select, s.
    public var loadSeconds = 0.0
    public var selectSeconds = 0.0

    /// Selects catalog components around the MS's phase centre (J2000) and merges the
    /// calibrator (catalog components within `matchRadius` of it are dropped; it takes their
    /// place).
    ///
    /// Throws `.badInput` for an unreadable catalog, `.badConfig` for a bad selection.
    public static func build(ms: MeasurementSet, catalog: String, format: CatalogFormat? = nil, columns: CatalogColumns? = nil,
                             selection: ConeSelection, calibrator: CalibratorModel? = nil, applyBeam: Bool = true,
                             matchRadius: Double = 60.0 / 3600 * .pi / 180) throws -> CatalogModel {
        try selection.validate()
        let ref = try PhaseReference(ms: ms)
        let beam = applyBeam ? AiryBeam.of(ms) : nil
        let freqs = ms.spectralWindows.flatMap(\.frequencies)
        let fmin = freqs.min() ?? 1.4e9
        let fmid = freqs.isEmpty ? 1.4e9 : freqs.reduce(0, +) / Double(freqs.count)
        let radius = try selection.effectiveRadius(beam: beam ?? AiryBeam.of(ms), lowestFrequency: fmin)
        let t0 = Date()
        let index = try CatalogIndex.load(path: catalog, format: format, columns: columns)
        let t1 = Date()
        var comps = index.select(ra: ref.centreJ2000.ra, dec: ref.centreJ2000.dec, radius: radius, minFlux: selection.minFlux,
                                 maxComponents: selection.maxComponents, beam: beam, frequency: fmid)
        let t2 = Date()
        let catalogCount = comps.count
        var replaced = 0
        var calIncluded = false
        if let calibrator, catalogCount > 0 {
            let cal = calibrator.component(phaseCentre: ref.centreJ2000)
            let before = comps.count
            comps.removeAll { $0.separation(ra: cal.ra, dec: cal.dec) <= matchRadius }
            replaced = before - comps.count
            comps.insert(cal, at: 0)
            calIncluded = true
        }
        return CatalogModel(components: comps, catalogCount: catalogCount, calibratorIncluded: calIncluded, replaced: replaced,
                            radius: radius, beam: beam, loadSeconds: t1.timeIntervalSince(t0), selectSeconds: t2.timeIntervalSince(t1))
    }
}
