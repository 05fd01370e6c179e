// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "selfcal",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "selfcal", targets: ["selfcal"]),
        .executable(name: "selfcal-bench", targets: ["selfcal-bench"]),
        .library(name: "SelfCal", targets: ["SelfCal"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
    ],
    targets: [
        .target(
            name: "CCasacore",
            cxxSettings: [.unsafeFlags(["-Wno-deprecated-declarations"])],
            linkerSettings: [
                .linkedLibrary("casa_ms"), .linkedLibrary("casa_measures"),
                .linkedLibrary("casa_tables"), .linkedLibrary("casa_casa"),
                .linkedLibrary("stdc++"),
            ]
        ),
        .systemLibrary(name: "CFITSIO", pkgConfig: "cfitsio",
                       providers: [.apt(["libcfitsio-dev", "wcslib-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // The errors with their exit codes, the atomic file writer and the JSON configuration:
        // what every other target shares, and nothing else.
        .target(name: "SelfCalSupport"),
        .target(
            name: "Imaging",
            dependencies: [
                "SelfCalSupport", "CFITSIO", "CZlib",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "SelfCal",
            dependencies: [
                "SelfCalSupport", "CCasacore", "Imaging",
                .product(name: "Numerics", package: "swift-numerics"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "selfcal",
            dependencies: [
                "SelfCal", "Imaging", "SelfCalSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Measurements for bench/*.sh (not a user command).
        .executableTarget(name: "selfcal-bench", dependencies: ["SelfCal", "SelfCalSupport"]),
        .testTarget(
            name: "SelfCalTests",
            dependencies: ["SelfCal", "Imaging", "SelfCalSupport"],
            exclude: ["FaultScripts"]
        ),
    ],
    cxxLanguageStandard: .cxx17
)
