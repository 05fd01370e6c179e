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
        .target(
            name: "Imaging",
            dependencies: [
                "CFITSIO",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "SelfCal",
            dependencies: [
                "CCasacore", "CZlib", "Imaging",
                .product(name: "Numerics", package: "swift-numerics"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "selfcal",
            dependencies: [
                "SelfCal", "Imaging",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Measurements for bench/*.sh (not a user command).
        .executableTarget(name: "selfcal-bench", dependencies: ["SelfCal"]),
        .testTarget(
            name: "SelfCalTests",
            dependencies: ["SelfCal", "Imaging"],
            exclude: ["FaultScripts"]
        ),
    ],
    cxxLanguageStandard: .cxx17
)
