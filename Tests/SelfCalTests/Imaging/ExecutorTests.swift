import Foundation
import Glibc
import Testing

@testable import Imaging
import SelfCal
import SelfCalSupport

// The WSClean executors against real tools: a real dockerd (started by scripts/start-dockerd.sh
// when it is not running), rootful podman where it works, and real WSClean; and fault injection
// with the scripts in FaultScripts/wsclean/, which take WSClean's arguments and misbehave on purpose.
//
// After every test, nothing of it may be left: no process whose command line carries the test's
// unique token (the exec clients, WSClean stand-ins and their helpers, inside or outside the
// container: a container's processes are in the host's /proc too), and no container labelled with
// its run id. Those checks read /proc and ask the engine CLI directly, not through the code under test.

/// All executor suites run one test at a time, light ones first and real WSClean last: they start
/// real processes and containers, and the timing bounds they check, like those of the
/// ProcessRunner suite running beside them at the start of `swift test`, hold only if this suite
/// does not load the 2 cores heavily at the same time. (Swift Testing runs a serialized suite's
/// tests in source order.)
@Suite("Executors", .serialized)
struct ExecutorTests {}

// MARK: - Pieces without a daemon

extension ExecutorTests {
    @Suite("Executor configuration")
    struct ExecutorConfigurationTests {
        @Test func pathMapping() throws {
            let map = ContainerPathMap(
                mounts: [ContainerMount(host: "/data", container: "/mnt/data"),
                         ContainerMount(host: "/data/run/", container: "/run-dir"),
                         ContainerMount(host: "/scratch", container: "/")],
                workingDirectory: "/data/run/round-01")
            #expect(try map.containerPath(for: "/data/obs.ms") == "/mnt/data/obs.ms")
            #expect(try map.containerPath(for: "/data") == "/mnt/data")
            #expect(try map.containerPath(for: "/data/run/x/img") == "/run-dir/x/img")
            #expect(try map.containerPath(for: "img") == "/run-dir/round-01/img")
            #expect(try map.containerPath(for: "../other/./img") == "/run-dir/other/img")
            #expect(try map.containerPath(for: "//data//a/") == "/mnt/data/a")
            #expect(try map.containerPath(for: "/scratch/tmp") == "/tmp")
            #expect(throws: PipelineError.self) { try map.containerPath(for: "/database/x") }
            #expect(throws: PipelineError.self) { try map.containerPath(for: "/data/../etc/passwd") }

            // A whole WSClean call: -name, -fits-mask, -temp-dir, the MS and absolute paths among
            // the extra arguments are mapped; paths outside every mount in the extra arguments
            // (inside the image) and other arguments are not.
            var o = WSCleanOptions(name: "/data/run/round-01/image", size: 64, scaleArcsec: 10)
            o.fitsMask = "/data/run/mask.fits"
            o.tempDirectory = "/scratch/tmp"
            o.extraArguments = ["-use-wgridder", "-reuse-psf", "/data/run/round-00/image", "-beam-file", "/usr/share/beam.h5"]
            let call = try map.wscleanCall(o, measurementSets: ["/data/obs.ms"])
            let a = call.arguments
            #expect(call.workingDirectory == "/run-dir/round-01")
            #expect(a[a.firstIndex(of: "-name")! + 1] == "/run-dir/round-01/image")
            #expect(a[a.firstIndex(of: "-fits-mask")! + 1] == "/run-dir/mask.fits")
            #expect(a[a.firstIndex(of: "-temp-dir")! + 1] == "/tmp")
            #expect(a[a.firstIndex(of: "-reuse-psf")! + 1] == "/run-dir/round-00/image")
            #expect(a[a.firstIndex(of: "-beam-file")! + 1] == "/usr/share/beam.h5")
            #expect(a.contains("-use-wgridder") && a.last == "/mnt/data/obs.ms")
            #expect(!a.contains { $0.hasPrefix("/data/") || $0.hasPrefix("/scratch/") }, "a host path left unmapped: \(a)")
            o.tempDirectory = "/elsewhere"
            #expect(throws: PipelineError.self) { try map.wscleanCall(o, measurementSets: ["/data/obs.ms"]) }
        }

        @Test func badMountsAndUsers() throws {
            let dir = try TestSupport.tempDir()
            defer { TestSupport.cleanup(dir) }
            guard TestSupport.which("docker") != nil else {
                try Test.cancel("the docker client is not installed (SELFCAL_WITH_CONTAINERS=1 scripts/install-deps.sh)")
            }
            let bad: [(ContainerExecutorConfig, String)] = [
                (ContainerExecutorConfig(mounts: [ContainerMount(host: "relative", container: "/d")]), "executor.mounts[0]"),
                (ContainerExecutorConfig(mounts: [ContainerMount(host: dir.path + "/missing", container: "/d")]), "executor.mounts[0]"),
                (ContainerExecutorConfig(mounts: [ContainerMount(host: dir.path, container: "/d:x")]), "executor.mounts[0]"),
                (ContainerExecutorConfig(image: ""), "executor.image"),
                (ContainerExecutorConfig(user: .id("a b")), "executor.user"),
            ]
            for (config, key) in bad {
                let error = #expect(throws: PipelineError.self) { try ContainerWSCleanExecutor(config: config, runner: ProcessRunner()) }
                #expect(error?.code == .badConfig)
                #expect(error?.context == key)
            }
            var noClient = ContainerExecutorConfig()
            noClient.environment = ["PATH": dir.path]
            let error = #expect(throws: PipelineError.self) { try ContainerWSCleanExecutor(config: noClient, runner: ProcessRunner()) }
            #expect(error?.message.contains("install-deps") == true)
            #expect(ContainerExecutorConfig.User(configValue: "host") == .host)
            #expect(ContainerExecutorConfig.User(configValue: nil) == .host)
            #expect(ContainerExecutorConfig.User(configValue: "1000:1000") == .id("1000:1000"))
            let executor = try ContainerWSCleanExecutor(config: ContainerExecutorConfig(user: .host), runner: ProcessRunner())
            #expect(executor.userArgument == "\(getuid()):\(getgid())")
            #expect(executor.containerName.hasPrefix("selfcal-\(getpid())-"))
        }

        @Test("auto: native when WSClean is installed, else the container")
        func factory() throws {
            let dir = try TestSupport.tempDir()
            defer { TestSupport.cleanup(dir) }
            let fake = dir.appendingPathComponent("wsclean")
            try "#!/bin/sh\n".write(to: fake, atomically: true, encoding: .utf8)
            chmod(fake.path, 0o755)
            let runner = ProcessRunner()
            let auto = try makeWSCleanExecutor(kind: .auto, runner: runner, searchPath: dir.path)
            #expect((auto as? NativeWSCleanExecutor)?.executable == fake.path)
            let configured = try makeWSCleanExecutor(kind: .auto, wscleanPath: fake.path, runner: runner, searchPath: "/nonexistent")
            #expect(configured is NativeWSCleanExecutor)
            let error = #expect(throws: PipelineError.self) { try makeWSCleanExecutor(kind: .native, runner: runner, searchPath: "/nonexistent") }
            #expect(error?.code == .badConfig)
            if TestSupport.which("docker") != nil {
                let fallback = try makeWSCleanExecutor(kind: .auto, runner: runner, searchPath: "/nonexistent")
                #expect(fallback is ContainerWSCleanExecutor)
                #expect(fallback.description.contains("docker container selfcal-"))
            }
            var noEngine = ContainerExecutorConfig()
            noEngine.environment = ["PATH": "/nonexistent"]
            let both = #expect(throws: PipelineError.self) {
                try makeWSCleanExecutor(kind: .auto, container: noEngine, runner: runner, searchPath: "/nonexistent")
            }
            #expect(both?.message.contains("WSClean is not installed here") == true)
            #expect(WSCleanExecutorKind(rawValue: "container") == .container)
        }
    }
}

// MARK: - selfcal doctor

extension ExecutorTests {
    @Suite("selfcal doctor")
    struct DoctorTests {
        @Test("reports every tool with its fix; exit 0 with WSClean here, non-zero without",
              .timeLimit(.minutes(1)))
        func doctor() async throws {
            // Through ProcessRunner (async), not TestSupport.run, which would hold one of the few
            // cooperative threads for seconds and starve the timing-sensitive tests running beside it.
            let binary = TestSupport.selfcalBinary
            try #require(FileManager.default.isExecutableFile(atPath: binary), "build selfcal first (swift build)")
            let ok = await tool(binary, ["doctor"], timeout: 50)
            if TestSupport.which("wsclean") != nil {
                #expect(ok.status == 0, "\(ok.output)")
            }
            for word in ["casacore", "wsclean", "docker", "podman", "slurm"] {
                #expect(ok.output.lowercased().contains(word), "no \(word) line:\n\(ok.output)")
            }
            // No tool on PATH at all: WSClean, the engines and Slurm are reported missing, with fixes.
            let dir = try TestSupport.tempDir()
            defer { TestSupport.cleanup(dir) }
            let bare = await tool(binary, ["doctor"], timeout: 50, environment: ["PATH": dir.path])
            #expect(bare.status != 0, "\(bare.output)")
            #expect(bare.output.contains("apt-get install wsclean"), "\(bare.output)")
            #expect(bare.output.contains("install-deps.sh"), "\(bare.output)")
        }
    }
}

// MARK: - Container executor

extension ExecutorTests {
    @Suite("Container executor")
    struct ContainerExecutorTests {
        // MARK: Faults

        @Test("a WSClean that hangs after cleaning up: accepted with a warning when its image exists, else an error",
              .timeLimit(.minutes(1)), arguments: ContainerEngine.allCases)
        func hangAfterCleanup(engine: ContainerEngine) async throws {
            try await ContainerSupport.require(engine)
            let fixture = try ExecutorFixture(engine: engine)
            defer { fixture.cleanup() }
            let limits = ExecutorLimits(timeout: .seconds(30), stallTimeout: .seconds(1.5), grace: .seconds(2))
            let executor = try fixture.containerExecutor(wsclean: "/faults/wsclean/hang_after_cleanup.sh", limits: limits)
            let progress = Percentages()
            try await fixture.finally(executor) {
                let clock = ContinuousClock()
                var start = clock.now
                let result = try await executor.run(fixture.options("img"), measurementSets: [], logPath: fixture.log, progress: { progress.add($0) })
                var elapsed = start.duration(to: clock.now)
                #expect(result.warning?.contains("hung") == true, "no warning: \(String(describing: result.warning))")
                #expect(result.process.outcome == .stalled)
                #expect(progress.values.contains(100))
                #expect(elapsed < .seconds(1.5 + 2 + 12), "took \(elapsed)")
                #expect(fixture.processes().isEmpty, "left inside: \(fixture.processes())")

                start = clock.now
                var noOutput = fixture.options("missing")
                noOutput.extraArguments = ["-fault-no-output"]
                let error = await #expect(throws: PipelineError.self) {
                    _ = try await executor.run(noOutput, measurementSets: [], logPath: fixture.log, progress: nil)
                }
                elapsed = start.duration(to: clock.now)
                #expect(error?.code == .toolFailed)
                #expect(error?.message.contains("outputs are missing") == true, "\(String(describing: error))")
                #expect(elapsed < .seconds(1.5 + 2 + 12), "took \(elapsed)")
                #expect(fixture.processes().isEmpty, "left inside: \(fixture.processes())")
                #expect(await executor.containersCreated == 1, "the container was not reused")
            }
            try await fixture.expectNothingLeft()
        }

        @Test("a WSClean that ignores SIGTERM is killed inside the container after the grace period",
              .timeLimit(.minutes(1)), arguments: ContainerEngine.allCases)
        func sigtermIgnored(engine: ContainerEngine) async throws {
            try await ContainerSupport.require(engine)
            let fixture = try ExecutorFixture(engine: engine)
            defer { fixture.cleanup() }
            let limits = ExecutorLimits(timeout: .seconds(1), stallTimeout: .seconds(30), grace: .seconds(1))
            let executor = try fixture.containerExecutor(wsclean: "/faults/wsclean/ignore_sigterm.sh", limits: limits)
            try await fixture.finally(executor) {
                try await executor.prepare()
                let clock = ContinuousClock()
                let start = clock.now
                let error = await #expect(throws: PipelineError.self) {
                    _ = try await executor.run(fixture.options("img"), measurementSets: [], logPath: fixture.log, progress: nil)
                }
                let elapsed = start.duration(to: clock.now)
                #expect(error?.code == .toolFailed)
                #expect(error?.message.contains("timed out") == true, "\(String(describing: error))")
                #expect(error?.message.contains("ignoring SIGTERM") == true, "no output tail in: \(String(describing: error))")
                #expect(elapsed >= .seconds(2), "grace period not honoured inside: \(elapsed)")
                #expect(elapsed < .seconds(1 + 1 + 3), "deadline + grace + 3 s exceeded: \(elapsed)")
                // Stopped inside while the container still runs: not merely by removing the container.
                #expect(fixture.processes().isEmpty, "left inside: \(fixture.processes())")
                #expect(try await fixture.containerState() == "running")
            }
            try await fixture.expectNothingLeft()
        }

        @Test("a helper WSClean leaves behind, holding its output, is killed after a normal exit",
              .timeLimit(.minutes(1)), arguments: ContainerEngine.allCases)
        func helperLeftBehind(engine: ContainerEngine) async throws {
            try await ContainerSupport.require(engine)
            let fixture = try ExecutorFixture(engine: engine)
            defer { fixture.cleanup() }
            let executor = try fixture.containerExecutor(
                wsclean: "/faults/wsclean/leave_helper.sh", limits: ExecutorLimits(timeout: .seconds(20), stallTimeout: .seconds(20), grace: .seconds(2)))
            try await fixture.finally(executor) {
                try await executor.prepare()
                let clock = ContinuousClock()
                let start = clock.now
                let result = try await executor.run(fixture.options("img"), measurementSets: [], logPath: fixture.log, progress: nil)
                let elapsed = start.duration(to: clock.now)
                #expect(result.process.succeeded)
                #expect(result.warning == nil)
                // docker exec waits up to ~2 s for output a leftover still holds; podman does not.
                #expect(elapsed < .seconds(5), "took \(elapsed)")
                let helperFile = fixture.dir.appendingPathComponent("img.helper.pid").path
                #expect(FileManager.default.fileExists(atPath: helperFile), "the stand-in did not start its helper")
                #expect(fixture.processes().isEmpty, "left inside: \(fixture.processes())")
            }
            try await fixture.expectNothingLeft()
        }

        @Test("a crash midway is a tool failure with the last output", .timeLimit(.minutes(1)),
              arguments: ContainerEngine.allCases)
        func crash(engine: ContainerEngine) async throws {
            try await ContainerSupport.require(engine)
            let fixture = try ExecutorFixture(engine: engine)
            defer { fixture.cleanup() }
            let executor = try fixture.containerExecutor(wsclean: "/faults/wsclean/crash.sh", limits: ExecutorLimits(timeout: .seconds(20)))
            try await fixture.finally(executor) {
                let error = await #expect(throws: PipelineError.self) {
                    _ = try await executor.run(fixture.options("img"), measurementSets: [], logPath: fixture.log, progress: nil)
                }
                #expect(error?.code == .toolFailed)
                #expect(error?.message.contains("about to crash") == true, "\(String(describing: error))")
                #expect(error?.message.contains("never reached") == false)
                #expect(error?.message.contains(fixture.containerName) == true)
                #expect(error?.context?.contains("crash.sh") == true)
                #expect(fixture.processes().isEmpty, "left inside: \(fixture.processes())")
            }
            try await fixture.expectNothingLeft()
        }

        @Test("a flood of output through the exec client ends normally", .timeLimit(.minutes(1)),
              arguments: ContainerEngine.allCases)
        func flood(engine: ContainerEngine) async throws {
            try await ContainerSupport.require(engine)
            let fixture = try ExecutorFixture(engine: engine)
            defer { fixture.cleanup() }
            let executor = try fixture.containerExecutor(
                wsclean: "/faults/wsclean/flood.sh", limits: ExecutorLimits(timeout: .seconds(40), stallTimeout: .seconds(10)))
            try await fixture.finally(executor) {
                var options = fixture.options("img")
                options.extraArguments = ["-fault-flood-bytes", "\(32 << 20)"]
                let result = try await executor.run(options, measurementSets: [], logPath: fixture.log, progress: nil)
                #expect(result.process.succeeded)
                #expect(result.process.outputTail.hasSuffix("flood done\n"))
                let size = try FileManager.default.attributesOfItem(atPath: fixture.log.path)[.size] as? Int ?? 0
                #expect(size >= 32 << 20, "log holds \(size) bytes")
                #expect(fixture.processes().isEmpty, "left inside: \(fixture.processes())")
            }
            try await fixture.expectNothingLeft()
        }

        @Test("a container killed mid-call is a clear error, and the next call re-creates it",
              .timeLimit(.minutes(1)), arguments: ContainerEngine.allCases)
        func containerKilledMidCall(engine: ContainerEngine) async throws {
            try await ContainerSupport.require(engine)
            let fixture = try ExecutorFixture(engine: engine)
            defer { fixture.cleanup() }
            let executor = try fixture.containerExecutor(
                wsclean: "/faults/wsclean/run_forever.sh", limits: ExecutorLimits(timeout: .seconds(30), stallTimeout: .seconds(30), grace: .seconds(2)))
            try await fixture.finally(executor) {
                let call = Task { try await executor.run(fixture.options("img"), measurementSets: [], logPath: fixture.log, progress: nil) }
                try await pollUntil("the stand-in runs") { FileManager.default.fileExists(atPath: fixture.dir.appendingPathComponent("img.pid").path) }
                let kill = try await fixture.engineCLI(["kill", fixture.containerName])
                #expect(kill.status == 0, "\(kill.output)")
                let clock = ContinuousClock()
                let killed = clock.now
                let error = await #expect(throws: PipelineError.self) { _ = try await call.value }
                #expect(killed.duration(to: clock.now) < .seconds(5))
                #expect(error?.code == .toolFailed)
                #expect(error?.message.contains("re-created") == true, "\(String(describing: error))")

                // The next call gets a new container.
                var quick = fixture.options("again")
                quick.extraArguments = ["-fault-quick"]
                let result = try await executor.run(quick, measurementSets: [], logPath: fixture.log, progress: nil)
                #expect(result.process.succeeded)
                #expect(await executor.containersCreated == 2)
                #expect(fixture.processes().isEmpty, "left inside: \(fixture.processes())")
            }
            try await fixture.expectNothingLeft()
        }

        @Test("cancelling the task stops the process inside the container; shutdown removes the container",
              .timeLimit(.minutes(1)), arguments: ContainerEngine.allCases)
        func cancellation(engine: ContainerEngine) async throws {
            try await ContainerSupport.require(engine)
            let fixture = try ExecutorFixture(engine: engine)
            defer { fixture.cleanup() }
            let executor = try fixture.containerExecutor(
                wsclean: "/faults/wsclean/run_forever.sh", limits: ExecutorLimits(timeout: .seconds(50), stallTimeout: .seconds(50), grace: .seconds(3)))
            try await fixture.finally(executor) {
                let call = Task { try await executor.run(fixture.options("img"), measurementSets: [], logPath: fixture.log, progress: nil) }
                try await pollUntil("the stand-in runs") { FileManager.default.fileExists(atPath: fixture.dir.appendingPathComponent("img.pid").path) }
                try await pollUntil("the stand-in shows in the process table") { !fixture.processes().isEmpty }
                let clock = ContinuousClock()
                let cancelled = clock.now
                call.cancel()
                let error = await #expect(throws: PipelineError.self) { _ = try await call.value }
                let stopTime = cancelled.duration(to: clock.now)
                #expect(error?.code == .interrupted)
                #expect(stopTime < .seconds(3), "stopping a SIGTERM-obeying call took \(stopTime)")
                #expect(fixture.processes().isEmpty, "left inside: \(fixture.processes())")
                #expect(try await fixture.containerState() == "running", "stopped by removing the container, not inside it")
            }
            try await fixture.expectNothingLeft()
        }

        // MARK: Setup and leftovers

        @Test("containers of earlier runs whose selfcal is gone are removed at start; others are kept",
              .timeLimit(.minutes(1)), arguments: ContainerEngine.allCases)
        func leftoversRemoved(engine: ContainerEngine) async throws {
            try await ContainerSupport.require(engine)
            let fixture = try ExecutorFixture(engine: engine)
            defer { fixture.cleanup() }
            let host = Syscall.hostName()
            let me = getpid()
            let myStart = try #require(ProcFS.stat(me)?.startTime)
            // pid 0x3fffff+1 is beyond pid_max: no process has it.
            let cases: [(name: String, pid: String, start: String, host: String, removed: Bool)] = [
                ("dead", "4194305", "1", host, true),
                ("pidreused", "\(me)", "\(myStart - 1)", host, true),
                ("alive", "\(me)", "\(myStart)", host, false),
                ("otherhost", "4194305", "1", host + "-elsewhere", false),
            ]
            var names: [String] = []
            for c in cases {
                let name = "selfcal-\(fixture.token)-\(c.name)"
                names.append(name)
                let r = try await fixture.engineCLI(["run", "-d", "--init", "--network", "none", "--name", name,
                                               "--label", "selfcal.run=\(fixture.token)-\(c.name)", "--label", "selfcal.pid=\(c.pid)",
                                               "--label", "selfcal.pid-start=\(c.start)", "--label", "selfcal.host=\(c.host)",
                                               ContainerSupport.image, "sleep", "infinity"])
                try #require(r.status == 0, "\(r.output)")
            }
            let executor = try fixture.containerExecutor(wsclean: "wsclean", limits: ExecutorLimits())
            var existence: [Bool] = []
            do {
                try await fixture.finally(executor) {
                    try await executor.prepare()
                }
                for name in names {
                    existence.append(try await fixture.engineCLI(["inspect", "--type", "container", name]).status == 0)
                }
            } catch {
                for name in names { _ = try? await fixture.engineCLI(["rm", "-f", name]) }
                throw error
            }
            for name in names { _ = try await fixture.engineCLI(["rm", "-f", name]) }
            let removed = await executor.removedLeftovers.sorted()
            #expect(removed == cases.filter(\.removed).map { "selfcal-\(fixture.token)-\($0.name)" }.sorted())
            for (c, (name, exists)) in zip(cases, zip(names, existence)) {
                #expect(exists == !c.removed, "\(name): exists \(exists)")
            }
            try await fixture.expectNothingLeft()
        }

        @Test("a daemon that is not running is a clear error within the deadline", .timeLimit(.minutes(1)))
        func daemonNotRunning() async throws {
            let dir = try TestSupport.tempDir()
            defer { TestSupport.cleanup(dir) }
            guard TestSupport.which("docker") != nil else {
                try Test.cancel("the docker client is not installed (SELFCAL_WITH_CONTAINERS=1 scripts/install-deps.sh)")
            }
            var config = ContainerExecutorConfig(engine: .docker, mounts: [ContainerMount(host: dir.path, container: "/data")])
            // A socket nobody listens on, rather than stopping the daemon others use.
            config.environment = ["DOCKER_HOST": "unix://\(dir.path)/no-daemon.sock"]
            config.daemonTimeout = .seconds(3)
            config.probeTimeout = .seconds(1)
            config.logDirectory = dir
            let executor = try ContainerWSCleanExecutor(config: config, runner: ProcessRunner())
            let clock = ContinuousClock()
            let start = clock.now
            let error = await #expect(throws: PipelineError.self) { try await executor.prepare() }
            let elapsed = start.duration(to: clock.now)
            #expect(error?.code == .toolFailed)
            #expect(error?.message.contains("did not answer within") == true, "\(String(describing: error))")
            #expect(error?.message.contains("start-dockerd") == true)
            #expect(elapsed >= .seconds(2), "gave up after \(elapsed) without retrying")
            #expect(elapsed < .seconds(3 + 1.5), "took \(elapsed) for a 3 s deadline")
            // A call fails the same way, and shutdown has nothing to remove.
            let callError = await #expect(throws: PipelineError.self) {
                var o = WSCleanOptions(name: dir.appendingPathComponent("img").path, size: 64, scaleArcsec: 10)
                o.niter = 0
                _ = try await executor.run(o, measurementSets: [], logPath: dir.appendingPathComponent("w.log"), progress: nil)
            }
            #expect(callError?.code == .toolFailed)
            await executor.shutdown()
        }

        @Test("a daemon that dies while selfcal waits for it is reported at once", .timeLimit(.minutes(1)))
        func daemonCrashDetected() async throws {
            // A client that never gets an answer, and a stand-in daemon process that lives 1.5 s. The
            // script's name becomes its command name, the one the probe looks for.
            let dir = try TestSupport.tempDir()
            defer { TestSupport.cleanup(dir) }
            let client = dir.appendingPathComponent("docker")
            try "#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///nowhere.sock'\nexit 1\n"
                .write(to: client, atomically: true, encoding: .utf8)
            let daemonName = "scfakedockerd"
            let daemon = dir.appendingPathComponent(daemonName)
            try "#!/bin/sh\nsleep 1.5\n".write(to: daemon, atomically: true, encoding: .utf8)
            chmod(client.path, 0o755)
            chmod(daemon.path, 0o755)
            let runner = ProcessRunner()
            let daemonRun = Task {
                try await runner.run(ProcessSpec(daemon.path, logPath: dir.appendingPathComponent("daemon.log"), timeout: .seconds(10)))
            }
            try await pollUntil("the stand-in daemon runs") { !ProcFS.processes(named: daemonName).isEmpty }
            var engine = try ContainerEngineClient(engine: .docker, executable: client.path, runner: runner, logDirectory: dir)
            engine.daemonProcessName = daemonName
            let clock = ContinuousClock()
            let start = clock.now
            let error = await #expect(throws: PipelineError.self) {
                _ = try await engine.probeDaemon(deadline: .seconds(20), probeTimeout: .seconds(1))
            }
            let elapsed = start.duration(to: clock.now)
            #expect(error?.code == .toolFailed)
            #expect(error?.message.contains("exited while selfcal waited") == true, "\(String(describing: error))")
            #expect(elapsed < .seconds(5), "waited \(elapsed) for a daemon that had died")
            _ = try await daemonRun.value
        }

        @Test("a path outside every mount is a configuration error before anything runs",
              .timeLimit(.minutes(1)))
        func pathOutsideMounts() async throws {
            // The engine client is a script that records every call: none may happen.
            let dir = try TestSupport.tempDir()
            defer { TestSupport.cleanup(dir) }
            let calls = dir.appendingPathComponent("calls.txt")
            let client = dir.appendingPathComponent("fake-docker")
            try "#!/bin/sh\necho \"$@\" >> '\(calls.path)'\nexit 1\n".write(to: client, atomically: true, encoding: .utf8)
            chmod(client.path, 0o755)
            let inside = dir.appendingPathComponent("data")
            try FileManager.default.createDirectory(at: inside, withIntermediateDirectories: true)
            var config = ContainerExecutorConfig(engine: .docker, mounts: [ContainerMount(host: inside.path, container: "/data")])
            config.engineExecutable = client.path
            config.logDirectory = dir
            let executor = try ContainerWSCleanExecutor(config: config, runner: ProcessRunner())

            let good = WSCleanOptions(name: inside.appendingPathComponent("img").path, size: 64, scaleArcsec: 10)
            var badMask = good
            badMask.fitsMask = dir.appendingPathComponent("mask.fits").path
            let cases: [(WSCleanOptions, [String], String)] = [
                (good, ["/elsewhere/obs.ms"], "/elsewhere/obs.ms"),
                (WSCleanOptions(name: "/tmp/img", size: 64, scaleArcsec: 10), [inside.appendingPathComponent("obs.ms").path], "/tmp/img"),
                (badMask, [inside.appendingPathComponent("obs.ms").path], badMask.fitsMask!),
                // `..` cannot climb out of a mount.
                (good, [inside.path + "/../obs.ms"], inside.path + "/../obs.ms"),
            ]
            for (options, sets, culprit) in cases {
                let error = await #expect(throws: PipelineError.self) {
                    _ = try await executor.run(options, measurementSets: sets, logPath: dir.appendingPathComponent("w.log"), progress: nil)
                }
                #expect(error?.code == .badConfig)
                #expect(error?.context == culprit)
                #expect(error?.message.contains("executor.mounts") == true, "\(String(describing: error))")
            }
            #expect(!FileManager.default.fileExists(atPath: calls.path), "the engine was called: \((try? String(contentsOf: calls, encoding: .utf8)) ?? "")")
            await executor.shutdown()
            #expect(!FileManager.default.fileExists(atPath: calls.path), "shutdown called the engine with no container made")
        }
    }
}

// MARK: - Native executor

extension ExecutorTests {
    @Suite("Native executor faults")
    struct NativeExecutorFaultTests {
        private func executor(_ script: String, _ limits: ExecutorLimits) throws -> NativeWSCleanExecutor {
            try NativeWSCleanExecutor(path: ExecutorFixture.faultScript(script), limits: limits, runner: ProcessRunner())
        }

        @Test("hang after cleaning up: a warning when the image exists, an error when it does not",
              .timeLimit(.minutes(1)))
        func hangAfterCleanup() async throws {
            let fixture = try ExecutorFixture(engine: nil)
            defer { fixture.cleanup() }
            let native = try executor("hang_after_cleanup.sh", ExecutorLimits(timeout: .seconds(30), stallTimeout: .seconds(1), grace: .seconds(2)))
            let progress = Percentages()
            let clock = ContinuousClock()
            var start = clock.now
            let result = try await native.run(fixture.options("img"), measurementSets: [], logPath: fixture.log, progress: { progress.add($0) })
            #expect(result.warning?.contains("hung") == true)
            #expect(progress.values.contains(100))
            #expect(start.duration(to: clock.now) < .seconds(1 + 2 + 2))
            #expect(fixture.processes().isEmpty, "left: \(fixture.processes())")

            var noOutput = fixture.options("missing")
            noOutput.extraArguments = ["-fault-no-output"]
            start = clock.now
            let error = await #expect(throws: PipelineError.self) {
                _ = try await native.run(noOutput, measurementSets: [], logPath: fixture.log, progress: nil)
            }
            #expect(error?.code == .toolFailed)
            #expect(error?.message.contains("outputs are missing") == true)
            #expect(start.duration(to: clock.now) < .seconds(1 + 2 + 2))
            #expect(fixture.processes().isEmpty, "left: \(fixture.processes())")
        }

        @Test("SIGTERM ignored: killed after deadline + grace", .timeLimit(.minutes(1)))
        func sigtermIgnored() async throws {
            let fixture = try ExecutorFixture(engine: nil)
            defer { fixture.cleanup() }
            let native = try executor("ignore_sigterm.sh", ExecutorLimits(timeout: .seconds(1), stallTimeout: .seconds(30), grace: .seconds(1)))
            let clock = ContinuousClock()
            let start = clock.now
            let error = await #expect(throws: PipelineError.self) {
                _ = try await native.run(fixture.options("img"), measurementSets: [], logPath: fixture.log, progress: nil)
            }
            let elapsed = start.duration(to: clock.now)
            #expect(error?.code == .toolFailed)
            #expect(error?.message.contains("timed out") == true)
            #expect(elapsed >= .seconds(2) && elapsed < .seconds(1 + 1 + 2.5), "\(elapsed)")
            #expect(fixture.processes().isEmpty, "left: \(fixture.processes())")
        }

        @Test("a helper left holding the output is killed after a normal exit", .timeLimit(.minutes(1)))
        func helperLeftBehind() async throws {
            let fixture = try ExecutorFixture(engine: nil)
            defer { fixture.cleanup() }
            let native = try executor("leave_helper.sh", ExecutorLimits(timeout: .seconds(20)))
            let result = try await native.run(fixture.options("img"), measurementSets: [], logPath: fixture.log, progress: nil)
            #expect(result.process.succeeded)
            #expect(result.process.duration < .seconds(3))
            let helper = try #require(Int32(String(contentsOf: fixture.dir.appendingPathComponent("img.helper.pid"), encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)))
            #expect(ProcFS.stat(helper).map(\.isZombie) ?? true, "helper \(helper) is alive")
            #expect(fixture.processes().isEmpty, "left: \(fixture.processes())")
        }

        @Test("a crash is a tool failure with the last output", .timeLimit(.minutes(1)))
        func crash() async throws {
            let fixture = try ExecutorFixture(engine: nil)
            defer { fixture.cleanup() }
            let native = try executor("crash.sh", ExecutorLimits(timeout: .seconds(20)))
            let error = await #expect(throws: PipelineError.self) {
                _ = try await native.run(fixture.options("img"), measurementSets: [], logPath: fixture.log, progress: nil)
            }
            #expect(error?.code == .toolFailed)
            #expect(error?.message.contains("SIGSEGV") == true, "\(String(describing: error))")
            #expect(error?.message.contains("about to crash") == true)
            #expect(fixture.processes().isEmpty)
        }

        @Test("a flood of output ends normally", .timeLimit(.minutes(1)))
        func flood() async throws {
            let fixture = try ExecutorFixture(engine: nil)
            defer { fixture.cleanup() }
            let native = try executor("flood.sh", ExecutorLimits(timeout: .seconds(40), stallTimeout: .seconds(10)))
            var options = fixture.options("img")
            options.extraArguments = ["-fault-flood-bytes", "\(32 << 20)"]
            let result = try await native.run(options, measurementSets: [], logPath: fixture.log, progress: nil)
            #expect(result.process.succeeded)
            #expect(result.process.outputTail.hasSuffix("flood done\n"))
            #expect(fixture.processes().isEmpty)
        }

        @Test("cancellation stops the call and its helper", .timeLimit(.minutes(1)))
        func cancellation() async throws {
            let fixture = try ExecutorFixture(engine: nil)
            defer { fixture.cleanup() }
            let native = try executor("run_forever.sh", ExecutorLimits(timeout: .seconds(50), stallTimeout: .seconds(50), grace: .seconds(3)))
            let call = Task { try await native.run(fixture.options("img"), measurementSets: [], logPath: fixture.log, progress: nil) }
            try await pollUntil("the stand-in runs") { fixture.processes().count >= 2 }
            call.cancel()
            let error = await #expect(throws: PipelineError.self) { _ = try await call.value }
            #expect(error?.code == .interrupted)
            #expect(fixture.processes().isEmpty, "left: \(fixture.processes())")
        }
    }
}

// MARK: - Container executor with real WSClean (last: the heaviest)

extension ExecutorTests {
    @Suite("Container executor with WSClean")
    struct ContainerWSCleanTests {
        @Test("WSClean in the container images a simulated MS like native WSClean",
              .timeLimit(.minutes(2)), arguments: ContainerEngine.allCases)
        func imageMatchesNative(engine: ContainerEngine) async throws {
            try await ContainerSupport.require(engine)
            let wsclean = try #require(TestSupport.which("wsclean"), "WSClean is not installed (scripts/install-deps.sh)")
            let fixture = try ExecutorFixture(engine: engine)
            defer { fixture.cleanup() }
            var simulation = SimulationOptions(preset: .small)
            simulation.corruptGains = false
            simulation.noiseJy = 0.01
            let ms = fixture.dir.appendingPathComponent("sim.ms").path
            _ = try Simulator.run(msPath: ms, options: simulation)

            func options(_ name: String) -> WSCleanOptions {
                var o = WSCleanOptions(name: fixture.dir.appendingPathComponent(name).path, size: 256, scaleArcsec: 20)
                o.niter = 1000
                o.weighting = .natural
                o.autoThreshold = 3
                o.threads = 1
                o.quiet = false
                return o
            }
            let native = try NativeWSCleanExecutor(path: wsclean, limits: ExecutorLimits(timeout: .seconds(60), stallTimeout: .seconds(30)), runner: ProcessRunner())
            _ = try await native.run(options("native"), measurementSets: [ms], logPath: fixture.dir.appendingPathComponent("native.log"), progress: nil)

            // The MS and outputs are seen inside at another path: mapping is exercised.
            let executor = try fixture.containerExecutor(
                wsclean: "wsclean", limits: ExecutorLimits(timeout: .seconds(60), stallTimeout: .seconds(30), grace: .seconds(2)))
            let progress = Percentages()
            let clock = ContinuousClock()
            let start = clock.now
            let result = try await fixture.finally(executor) {
                try await executor.run(options("container"), measurementSets: [ms], logPath: fixture.dir.appendingPathComponent("container.log"),
                                       progress: { progress.add($0) })
            }
            print("container imaging with \(engine): \(start.duration(to: clock.now))")
            #expect(result.warning == nil)
            #expect(progress.values.contains(100), "no progress reported: \(progress.values)")

            let a = try FITSImage.read(path: fixture.dir.appendingPathComponent("native-image.fits").path)
            let b = try FITSImage.read(path: fixture.dir.appendingPathComponent("container-image.fits").path)
            #expect(a.width == b.width && a.height == b.height)
            let peak = a.pixels.map(abs).max() ?? 0
            #expect(peak > 0.5, "the native image is empty (peak \(peak) Jy)")
            let maxDiff = zip(a.pixels, b.pixels).map { abs($0 - $1) }.max() ?? .infinity
            #expect(maxDiff <= 1e-4 * peak, "images differ by up to \(maxDiff) Jy (peak \(peak))")
            print("container vs native (\(engine)): largest pixel difference \(maxDiff) Jy, peak \(peak) Jy")
            for key in ["CRVAL1", "CRVAL2", "CDELT1", "CDELT2"] {
                #expect(a.doubleValue(forKey: key) == b.doubleValue(forKey: key), "\(key) differs")
            }
            // The fitted restoring beam carries the gridding's float noise.
            for key in ["BMAJ", "BMIN"] {
                let (x, y) = (try #require(a.doubleValue(forKey: key)), try #require(b.doubleValue(forKey: key)))
                #expect(abs(x - y) <= 1e-6 * abs(x), "\(key): \(x) vs \(y)")
            }
            // `user: host`: the files written inside belong to the caller.
            let owner = try FileManager.default.attributesOfItem(atPath: fixture.dir.appendingPathComponent("container-image.fits").path)[.ownerAccountID] as? Int
            #expect(owner == Int(getuid()))
            try await fixture.expectNothingLeft()
        }
    }
}
