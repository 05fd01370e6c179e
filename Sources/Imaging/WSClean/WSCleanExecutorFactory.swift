import Foundation
import Logging
import SelfCalSupport

/// `executor.kind`: which executor runs WSClean.
public enum WSCleanExecutorKind: String, Sendable, CaseIterable, Codable {
    /// Native when WSClean is installed (on PATH, or at `executor.wsclean_path`), else container.
    case auto
    case native
    case container
}

/// Builds the executor `kind` asks for; the loop calls this once per run and `shutdown()`s the
/// result at the end.
///
/// - `native`: WSClean at `wscleanPath`, else `wsclean` in `searchPath` (nil: selfcal's PATH).
/// - `container`: a `ContainerWSCleanExecutor` with `container` (nothing starts until its first
///   call or `prepare()`).
/// - `auto`: native when `wscleanPath` is set or WSClean is in the search path, else container.
///
/// Throws `.badConfig` naming the key to fix: WSClean missing for `native`, the engine client
/// missing or a bad mount for `container`.
public func makeWSCleanExecutor(
    kind: WSCleanExecutorKind,
    wscleanPath: String? = nil,
    container: ContainerExecutorConfig = ContainerExecutorConfig(),
    limits: ExecutorLimits = ExecutorLimits(),
    runner: ProcessRunner,
    logger: Logger = Logger(label: "selfcal.executor"),
    searchPath: String? = nil
) throws(PipelineError) -> any WSCleanExecutor {
    func native() throws(PipelineError) -> NativeWSCleanExecutor {
        if let wscleanPath { return try NativeWSCleanExecutor(path: wscleanPath, limits: limits, runner: runner) }
        guard let found = findExecutable("wsclean", searchPath: searchPath) else {
            throw PipelineError(.badConfig, "WSClean was not found on PATH (install it: apt-get install wsclean; or set executor.wsclean_path, or use executor.kind container)", context: "executor.kind")
        }
        return try NativeWSCleanExecutor(path: found, limits: limits, runner: runner)
    }
    switch kind {
    case .native:
        return try native()
    case .container:
        return try ContainerWSCleanExecutor(config: container, limits: limits, runner: runner, logger: logger)
    case .auto:
        if wscleanPath != nil || findExecutable("wsclean", searchPath: searchPath) != nil {
            return try native()
        }
        logger.info("WSClean is not installed here: using a \(container.engine.rawValue) container (image \(container.image))")
        do {
            return try ContainerWSCleanExecutor(config: container, limits: limits, runner: runner, logger: logger)
        } catch {
            var error = error
            error.message = "WSClean is not installed here (apt-get install wsclean), and the container executor cannot be used either: " + error.message
            throw error
        }
    }
}
