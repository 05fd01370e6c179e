import Foundation
import Logging
import SelfCalSupport

/// A host directory (or file) that the container sees at another path.
public struct ContainerMount: Sendable, Equatable, Codable {
    public var host: String
    public var container: String
    public var readOnly: Bool

    public init(host: String, container: String, readOnly: Bool = false) {
        self.host = host
        self.container = container
        self.readOnly = readOnly
    }
}

/// How the container executor runs its container: the `executor` section of the config
/// (`engine`, `image`, `mounts`, `user`) and the bounds of every wait on the engine.
public struct ContainerExecutorConfig: Sendable {
    /// Whom the container's processes run as (`--user`).
    public enum User: Sendable, Equatable {
        /// The image's default user (root for `selfcal-wsclean`).
        case image
        /// selfcal's own uid:gid, so that files written into the mounts belong to the caller.
        case host
        /// `uid[:gid]` or a name the image knows.
        case id(String)

        /// The config's `user` value: `host`, `image` (or empty), or anything else as an id.
        public init(configValue: String?) {
            switch configValue {
            case nil, "host": self = .host
            case "", "image": self = .image
            case let value?: self = .id(value)
            }
        }
    }

    public var engine: ContainerEngine
    /// The client executable; nil finds `docker`/`podman` in PATH.
    public var engineExecutable: String?
    /// Built by scripts/build-wsclean-image.sh; never pulled (no registry is assumed).
    public var image: String
    public var mounts: [ContainerMount]
    public var user: User
    /// The program run for each call, inside the container.
    public var wscleanPath: String
    /// Names the container (`selfcal-<runID>`) and labels it (`selfcal.run`); nil: selfcal's pid
    /// and a random suffix. Letters, digits, `_`, `.`, `-`.
    public var runID: String?
    /// Set for the engine client (`DOCKER_HOST`, `CONTAINERS_CONF`), on top of selfcal's environment.
    public var environment: [String: String]
    /// Where `container-engine.log` goes (the run's output directory); nil: `selfcal-<runID>` in
    /// the system's temporary directory.
    public var logDirectory: URL?
    /// The longest wait for the daemon to answer before the first container is made.
    public var daemonTimeout: Duration
    /// The longest wait for one `info` probe.
    public var probeTimeout: Duration
    /// The longest wait for any other engine call (`run -d`, `inspect`, `rm -f`, ...).
    public var engineCallTimeout: Duration
    /// `stop -t` at shutdown: SIGTERM, then SIGKILL after this.
    public var stopGrace: Duration
    /// Remove, before the first container is made, containers labelled by earlier selfcal runs on
    /// this host whose selfcal process is gone.
    public var removeLeftovers: Bool

    public init(
        engine: ContainerEngine = .docker, image: String = "selfcal-wsclean:latest",
        mounts: [ContainerMount] = [], user: User = .host
    ) {
        self.engine = engine
        self.engineExecutable = nil
        self.image = image
        self.mounts = mounts
        self.user = user
        self.wscleanPath = "wsclean"
        self.runID = nil
        self.environment = [:]
        self.logDirectory = nil
        self.daemonTimeout = .seconds(30)
        self.probeTimeout = .seconds(3)
        self.engineCallTimeout = .seconds(30)
        self.stopGrace = .seconds(2)
        self.removeLeftovers = true
    }
}

/// Maps host paths to the paths a container sees through its mounts.
public struct ContainerPathMap: Sendable {
    public let mounts: [ContainerMount]
    /// Relative paths are taken from here (selfcal's working directory by default).
    public let workingDirectory: String

    public init(mounts: [ContainerMount], workingDirectory: String = FileManager.default.currentDirectoryPath) {
        // The deepest mount wins: /data/run inside /data.
        self.mounts = mounts.map {
            ContainerMount(host: Self.normalized($0.host, relativeTo: "/"),
                           container: Self.normalized($0.container, relativeTo: "/"), readOnly: $0.readOnly)
        }.sorted { $0.host.count > $1.host.count }
        self.workingDirectory = workingDirectory
    }

    /// The container's path for `hostPath`. Throws `.badConfig` naming the path (and `what` it
    /// is) when no mount holds it: the container could not see it.
    public func containerPath(for hostPath: String, what: String = "path") throws(PipelineError) -> String {
        let lexical = Self.normalized(hostPath, relativeTo: workingDirectory)
        if let mapped = map(lexical, through: mounts) { return mapped }
        // A path reached through a symbolic link may still lie in a mount once resolved.
        let resolved = URL(fileURLWithPath: lexical).resolvingSymlinksInPath().path
        let resolvedMounts = mounts.map {
            ContainerMount(host: URL(fileURLWithPath: $0.host).resolvingSymlinksInPath().path,
                           container: $0.container, readOnly: $0.readOnly)
        }
        if let mapped = map(resolved, through: resolvedMounts) { return mapped }
        let list = mounts.isEmpty ? "there are none" : mounts.map { "\($0.host) → \($0.container)" }.joined(separator: ", ")
        throw PipelineError(
            .badConfig,
            "the \(what) \(lexical) is outside every mount of the container (\(list)), so WSClean in the container could not see it; add a mount in executor.mounts that holds it",
            context: hostPath)
    }

    /// A WSClean call as the container must see it: the arguments with every host path mapped
    /// (`-name`, `-fits-mask`, `-temp-dir`, the measurement sets, and any absolute path among the
    /// extra arguments that lies in a mount; other extra arguments, such as paths that only exist
    /// inside the image, pass unchanged), and the working directory inside (where `-name`
    /// writes). Throws `.badConfig` for a path WSClean needs that no mount holds.
    public func wscleanCall(_ options: WSCleanOptions, measurementSets: [String]) throws(PipelineError)
        -> (arguments: [String], workingDirectory: String) {
        var mapped = options
        mapped.name = try containerPath(for: options.name, what: "output name (-name)")
        if let mask = options.fitsMask {
            mapped.fitsMask = try containerPath(for: mask, what: "clean mask (-fits-mask)")
        }
        if let temp = options.tempDirectory {
            mapped.tempDirectory = try containerPath(for: temp, what: "temporary directory (-temp-dir)")
        }
        mapped.extraArguments = options.extraArguments.map { arg in
            guard arg.hasPrefix("/") else { return arg }
            return (try? containerPath(for: arg)) ?? arg
        }
        var sets: [String] = []
        for ms in measurementSets {
            sets.append(try containerPath(for: ms, what: "measurement set"))
        }
        let directory = (mapped.name as NSString).deletingLastPathComponent
        return (mapped.arguments(measurementSets: sets), directory.isEmpty ? "/" : directory)
    }

    private func map(_ path: String, through mounts: [ContainerMount]) -> String? {
        for mount in mounts {
            if path == mount.host { return mount.container }
            let prefix = mount.host == "/" ? "/" : mount.host + "/"
            if path.hasPrefix(prefix) {
                let rest = path.dropFirst(prefix.count)
                return mount.container == "/" ? "/" + rest : mount.container + "/" + rest
            }
        }
        return nil
    }

    /// `path` made absolute and cleaned of `.`, `..` and repeated `/`, without touching the disk.
    static func normalized(_ path: String, relativeTo directory: String) -> String {
        let absolute = path.hasPrefix("/") ? path : directory + "/" + path
        var parts: [Substring] = []
        for part in absolute.split(separator: "/") {
            switch part {
            case ".": continue
            case "..": _ = parts.popLast()
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }
}

/// WSClean in one long-running container per selfcal run (`docker`/`podman`), each call an `exec`.
///
/// The container is made on first use (or by `prepare()`): the daemon is probed within
/// `daemonTimeout`, containers left by earlier selfcal runs on this host whose process is gone are
/// removed, then `run -d --init --network none --pull never --name selfcal-<runID>` with labels
/// `selfcal.run`, `selfcal.pid`, `selfcal.pid-start`, `selfcal.host`, the mounts and `--user`,
/// running `sleep infinity`. A container found dead before a call is re-created.
///
/// Each call is `exec -w <dir of -name> selfcal-<runID> sh -c <wrapper> ... wsclean ARGS`, run by
/// `ProcessRunner` with the executor's deadline, stall watchdog and grace. The wrapper writes its
/// pid (which leads a process group and session inside) to a file in the container's `/tmp` and
/// execs WSClean under `timeout` (a backstop in case selfcal itself dies). Because killing the exec
/// client does not stop anything inside, after every call the group inside is ended with one more
/// `exec`: SIGTERM, up to `grace`, SIGKILL when the client was stopped (deadline, stall, cancel);
/// SIGKILL to leftovers after a normal end. When that fails, the container is removed (and
/// re-created for the next call).
///
/// Host paths in the options (`-name`, `-fits-mask`, `-temp-dir`, absolute paths among the extra
/// arguments) and the measurement sets are mapped to container paths through the mounts before
/// anything runs (`ContainerPathMap.wscleanCall`).
///
/// `shutdown()`: `stop -t <stopGrace>`, `kill` if that failed, and always `rm -f`.
public actor ContainerWSCleanExecutor: WSCleanExecutor {
    public nonisolated let config: ContainerExecutorConfig
    public nonisolated let limits: ExecutorLimits
    public nonisolated let runID: String
    /// `selfcal-<runID>`.
    public nonisolated let containerName: String
    public nonisolated let engine: ContainerEngineClient
    public nonisolated let paths: ContainerPathMap
    nonisolated let runner: ProcessRunner
    nonisolated let logger: Logger
    nonisolated let userArgument: String?

    private enum State: Equatable { case idle, running, dead, shutDown }
    private var state: State = .idle
    private var daemonReady = false
    private var creationAttempted = false
    private var starting: Task<Result<Void, PipelineError>, Never>?
    private var execCount = 0
    /// How many containers this executor has made (more than 1 after re-creations).
    public private(set) var containersCreated = 0
    /// Names of the containers of earlier runs it removed.
    public private(set) var removedLeftovers: [String] = []

    /// Checks the configuration (client present, mounts absolute and existing, user, run id);
    /// throws `.badConfig` naming the key at fault. Starts nothing.
    public init(
        config: ContainerExecutorConfig, limits: ExecutorLimits = ExecutorLimits(), runner: ProcessRunner,
        logger: Logger = Logger(label: "selfcal.container")
    ) throws(PipelineError) {
        let runID = config.runID ?? "\(Syscall.currentProcessID())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
        guard !runID.isEmpty, runID.allSatisfy(allowed.contains) else {
            throw PipelineError(.badConfig, "a run id may hold only letters, digits, '_', '.' and '-'", context: runID)
        }
        guard !config.image.isEmpty else {
            throw PipelineError(.badConfig, "no container image given (build one: scripts/build-wsclean-image.sh)", context: "executor.image")
        }
        for (index, mount) in config.mounts.enumerated() {
            let key = "executor.mounts[\(index)]"
            guard mount.host.hasPrefix("/"), mount.container.hasPrefix("/") else {
                throw PipelineError(.badConfig, "mount paths must be absolute (host \(mount.host), container \(mount.container))", context: key)
            }
            guard !(mount.host + mount.container).contains(":"), !(mount.host + mount.container).contains(",") else {
                throw PipelineError(.badConfig, "mount paths may not hold ':' or ','", context: key)
            }
            guard FileManager.default.fileExists(atPath: mount.host) else {
                throw PipelineError(.badConfig, "the host path \(mount.host) does not exist (the engine would create it, owned by root); create it or fix the mount", context: key)
            }
        }
        switch config.user {
        case .image: userArgument = nil
        case .host: userArgument = "\(Syscall.userID()):\(Syscall.groupID())"
        case .id(let id):
            guard !id.isEmpty, !id.contains(where: \.isWhitespace) else {
                throw PipelineError(.badConfig, "user must be \"host\", \"image\" or uid[:gid]", context: "executor.user")
            }
            userArgument = id
        }
        let logDirectory = config.logDirectory
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("selfcal-\(runID)")
        self.engine = try ContainerEngineClient(
            engine: config.engine, executable: config.engineExecutable, environment: config.environment,
            callTimeout: config.engineCallTimeout, runner: runner, logDirectory: logDirectory, logger: logger)
        self.config = config
        self.limits = limits
        self.runID = runID
        self.containerName = "selfcal-\(runID)"
        self.paths = ContainerPathMap(mounts: config.mounts)
        self.runner = runner
        var logger = logger
        logger[metadataKey: "selfcal.container"] = "\(containerName)"
        self.logger = logger
    }

    public nonisolated var description: String {
        "\(config.engine.rawValue) container \(containerName) (image \(config.image))"
    }

    /// Makes sure the daemon answers and the container runs, so that a broken setup is reported
    /// before the first WSClean call. `run` does the same on its own.
    public func prepare() async throws(PipelineError) {
        try await ensureContainer()
    }

    // MARK: Running WSClean

    public func run(
        _ options: WSCleanOptions, measurementSets: [String], logPath: URL,
        progress: (@Sendable (Int) -> Void)?
    ) async throws(PipelineError) -> WSCleanResult {
        try options.validate()
        let call = try containerCall(options, measurementSets: measurementSets)
        if Task.isCancelled {
            throw PipelineError(.interrupted, "WSClean not started: selfcal is stopping", context: containerName)
        }
        try await ensureContainer()
        execCount += 1
        let pidFile = "/tmp/selfcal-exec-\(runID)-\(execCount).pid"
        let innerLimit = Int((limits.timeout + limits.grace * 2).seconds.rounded(.up)) + 10
        let killAfter = max(1, Int(limits.grace.seconds.rounded(.up)))
        let spec = ProcessSpec(
            engine.executable,
            arguments: ["exec", "-w", call.workingDirectory, containerName,
                        "sh", "-c", Self.execWrapper, "selfcal-exec", pidFile, "\(innerLimit)s", "\(killAfter)s",
                        config.wscleanPath] + call.arguments,
            environment: config.environment, logPath: logPath,
            timeout: limits.timeout, stallTimeout: limits.stallTimeout,
            // The client ends at once on SIGTERM; the grace that matters is the one inside.
            grace: min(limits.grace, .seconds(1)))
        let result = try await runner.run(spec, onOutput: progress.map { report in
            { @Sendable text in if let percent = wscleanProgress(in: text) { report(percent) } }
        })
        let clientStopped = [.timedOut, .stalled, .cancelled].contains(result.outcome)
        let after = await withUncancelledTask { await self.endInside(pidFile: pidFile, clientStopped: clientStopped, exitedCleanly: result.succeeded) }

        if result.outcome == .cancelled {
            throw PipelineError(.interrupted, "WSClean in \(containerName) was stopped: selfcal was interrupted", context: result.commandLine)
        }
        if case .containerGone(let containerState) = after {
            throw PipelineError(
                .toolFailed,
                "the container \(containerName) was \(containerState) when WSClean's exec ended (\(result.outcome)): it was killed or removed from outside, or the daemon restarted; it will be re-created for the next call. Last output:\n\(result.outputTail.trimmingCharacters(in: .whitespacesAndNewlines).suffix(1500))",
                context: result.commandLine)
        }
        do {
            var judged = try judge(result, options: options)
            if case .couldNotStop(let why) = after {
                let note = "leftover processes in \(containerName) could not be ended (\(why)); the container was removed and will be re-created"
                judged.warning = judged.warning.map { "\($0); \(note)" } ?? note
            }
            return judged
        } catch {
            var error = error
            if case .exited(124) = result.outcome {
                error.message = "WSClean was stopped by its time limit inside the container (\(innerLimit) s); " + error.message
            } else if case .exited(127) = result.outcome {
                error.message = "\(config.wscleanPath) was not found in the image \(config.image) (build it: scripts/build-wsclean-image.sh, or fix executor.image); " + error.message
            }
            error.message = "in container \(containerName): " + error.message
            if case .couldNotStop(let why) = after {
                error.message += "\n(what was left of the call inside could not be ended (\(why)); the container was removed and will be re-created for the next call)"
            }
            throw error
        }
    }

    /// The wrapper every call runs inside: `$1` the pid file, `$2` the backstop time limit, `$3`
    /// the kill-after time, then WSClean and its arguments. An exec'd process leads its own session
    /// and process group, so its pid names the whole group of WSClean and what WSClean starts.
    static let execWrapper = #"f=$1; t=$2; k=$3; shift 3; echo $$ > "$f"; if command -v timeout >/dev/null 2>&1; then exec timeout -k "$k" "$t" "$@"; fi; exec "$@""#

    /// Ends the group recorded in `$1`: with `$2` > 0 seconds, SIGTERM and up to `$2` s for it to
    /// end, then SIGKILL; with 0, SIGKILL at once (leftovers after a normal end). Waits up to a
    /// second for the pid file (a call stopped right after its start). Exit 3: it survived.
    static let stopScript = #"f=$1; g=$2; i=0; while [ ! -s "$f" ] && [ $i -lt 10 ]; do sleep 0.1; i=$((i+1)); done; [ -s "$f" ] || exit 0; p=$(cat "$f"); [ "$p" -gt 1 ] 2>/dev/null || exit 0; if [ "$g" -gt 0 ] && kill -0 -$p 2>/dev/null; then kill -TERM -$p 2>/dev/null; n=$((g*10)); while [ $n -gt 0 ] && kill -0 -$p 2>/dev/null; do sleep 0.1; n=$((n-1)); done; fi; kill -KILL -$p 2>/dev/null; n=30; while [ $n -gt 0 ] && kill -0 -$p 2>/dev/null; do sleep 0.1; n=$((n-1)); done; rm -f "$f"; if kill -0 -$p 2>/dev/null; then echo "process group $p survived SIGKILL"; exit 3; fi"#

    private enum AfterExec { case clean, containerGone(ContainerState), couldNotStop(String) }

    /// After the exec client ended: stop (or sweep) what is left of the call inside the container.
    private func endInside(pidFile: String, clientStopped: Bool, exitedCleanly: Bool) async -> AfterExec {
        // Cheapest first: after a clean exit the container is almost surely fine; otherwise look,
        // since a killed container makes exec fail in the same way as a failing WSClean.
        if !exitedCleanly {
            let containerState = (try? await engine.state(of: containerName)) ?? .stopped("unknown: the engine did not answer")
            if containerState != .running {
                await markDead("it was \(containerState) after a call")
                return .containerGone(containerState)
            }
        }
        let graceSeconds = clientStopped ? max(1, Int(limits.grace.seconds.rounded(.up))) : 0
        let output = try? await engine.call(
            ["exec", containerName, "sh", "-c", Self.stopScript, "selfcal-stop", pidFile, String(graceSeconds)],
            timeout: .seconds(Double(graceSeconds)) + .seconds(15))
        if let output, output.succeeded {
            if clientStopped { logger.info("stopped the call inside \(containerName)") }
            return .clean
        }
        let why = output.map { $0.trimmed.isEmpty ? "\($0.result.outcome)" : $0.trimmed } ?? "the engine could not be run"
        // Look again: a container being killed can still read as running a moment before.
        if let containerState = try? await engine.state(of: containerName), containerState != .running {
            await markDead("it was \(containerState) after a call")
            return .containerGone(containerState)
        }
        logger.warning("could not end the call inside \(containerName) (\(why)): removing the container")
        await markDead(why)
        return .couldNotStop(why)
    }

    /// Removes the container; the next call makes a new one (unless the executor is shut down).
    private func markDead(_ why: String) async {
        if state != .shutDown { state = .dead }
        logger.info("container \(containerName) is unusable (\(why)); removing it")
        await engine.remove(containerName)
    }

    /// The WSClean arguments with every host path mapped, and the working directory inside
    /// (where `-name` writes, since WSClean puts temporary files in its working directory).
    private nonisolated func containerCall(
        _ options: WSCleanOptions, measurementSets: [String]
    ) throws(PipelineError) -> (arguments: [String], workingDirectory: String) {
        try paths.wscleanCall(options, measurementSets: measurementSets)
    }

    // MARK: The container

    private func ensureContainer() async throws(PipelineError) {
        while let pending = starting { _ = await pending.value }
        let task = Task { () -> Result<Void, PipelineError> in
            let result = await self.ensureContainerNow()
            self.starting = nil
            return result
        }
        starting = task
        let result = await withTaskCancellationHandler { await task.value } onCancel: { task.cancel() }
        try result.get()
    }

    private func ensureContainerNow() async -> Result<Void, PipelineError> {
        do throws(PipelineError) {
            switch state {
            case .shutDown:
                throw PipelineError(.interrupted, "the container executor was shut down", context: containerName)
            case .running:
                let containerState = try await engine.state(of: containerName)
                if containerState == .running { return .success(()) }
                logger.warning("container \(containerName) is \(containerState); re-creating it")
                await engine.remove(containerName)
            case .dead:
                logger.info("re-creating container \(containerName)")
                await engine.remove(containerName)
            case .idle:
                break
            }
            if !daemonReady {
                _ = try await engine.probeDaemon(deadline: config.daemonTimeout, probeTimeout: config.probeTimeout)
                daemonReady = true
                if config.removeLeftovers { await removeLeftoverContainers() }
            }
            try await createContainer()
            if state == .shutDown {
                // shutdown() waits for this start and then removes the container.
                throw PipelineError(.interrupted, "the container executor was shut down while it started", context: containerName)
            }
            state = .running
            return .success(())
        } catch {
            if state != .shutDown && state != .idle { state = .dead }
            return .failure(error)
        }
    }

    private func createContainer() async throws(PipelineError) {
        let me = Syscall.currentProcessID()
        var arguments = [
            "run", "-d", "--init", "--network", "none", "--pull", "never", "--name", containerName,
            "--label", "selfcal.run=\(runID)", "--label", "selfcal.pid=\(me)",
            "--label", "selfcal.pid-start=\(ProcFS.stat(me)?.startTime ?? 0)",
            "--label", "selfcal.host=\(Syscall.hostName())",
        ]
        if let userArgument { arguments += ["--user", userArgument] }
        for mount in config.mounts {
            arguments += ["-v", "\(mount.host):\(mount.container)\(mount.readOnly ? ":ro" : "")"]
        }
        arguments += [config.image, "sleep", "infinity"]
        creationAttempted = true
        let output = try await engine.call(arguments)
        if output.succeeded {
            containersCreated += 1
            logger.info("started container \(containerName) (\(config.engine.rawValue), image \(config.image))")
            return
        }
        // A client stopped half-way may have left a created (or even running) container.
        _ = await withUncancelledTask { await self.engine.remove(self.containerName) }
        let said = output.text.lowercased()
        if said.contains("no such image") || said.contains("image not known") || said.contains("unable to find image")
            || said.contains("pull access denied") || said.contains("repository does not exist") {
            throw PipelineError(
                .badConfig,
                "the image \(config.image) is not in \(config.engine.rawValue)'s local store; build it: scripts/build-wsclean-image.sh --engine \(config.engine.rawValue) (or fix executor.image)",
                context: "executor.image")
        }
        throw engine.failure("starting container \(containerName)", output)
    }

    /// Removes containers labelled by earlier selfcal runs on this host whose selfcal is gone.
    private func removeLeftoverContainers() async {
        let found: [ContainerInfo]
        do {
            found = try await engine.listContainers(label: "selfcal.run")
        } catch {
            logger.info("could not list containers of earlier runs: \(error)")
            return
        }
        let host = Syscall.hostName()
        for container in found where container.name != containerName {
            guard container.labels["selfcal.host"] == host,
                  let pid = Int32(container.labels["selfcal.pid"] ?? "") else { continue }
            let alive: Bool
            if let start = container.labels["selfcal.pid-start"].flatMap(UInt64.init), start != 0 {
                alive = ProcFS.isAlive(pid, startTime: start)
            } else {
                alive = ProcFS.stat(pid).map { !$0.isZombie } ?? false
            }
            if alive { continue }
            logger.info("removing container \(container.name), left by selfcal pid \(pid) (run \(container.labels["selfcal.run"] ?? "?")), which is gone")
            if await withUncancelledTask({ await self.engine.remove(container.id) }) {
                removedLeftovers.append(container.name)
            }
        }
    }

    // MARK: Shutdown

    /// Stops the container (`stop -t <stopGrace>`, `kill` if that failed) and always removes it;
    /// safe to call more than once and from a cancelled task. Later calls to `run` fail with
    /// `.interrupted`.
    public func shutdown() async {
        await withUncancelledTask { await self.shutdownNow() }
    }

    private func shutdownNow() async {
        state = .shutDown
        if let starting { _ = await starting.value }
        guard creationAttempted else { return }
        if await !engine.stop(containerName, grace: config.stopGrace) {
            await engine.kill(containerName)
        }
        if await !engine.remove(containerName) {
            await engine.remove(containerName)
        }
        logger.info("removed container \(containerName)")
    }
}
