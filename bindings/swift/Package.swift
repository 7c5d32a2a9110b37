// swift-tools-version:5.9
// The Swift package of the e2ee SDK. `build-xcframework.sh` (on a Mac) produces what it
// references: E2EEFFI.xcframework (the static library for iOS devices, the iOS simulator and
// macOS, with the C header and module map) and Sources/E2EE/E2EE.swift (generated).
import PackageDescription

let package = Package(
    name: "E2EE",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "E2EE", targets: ["E2EE"]),
    ],
    targets: [
        .binaryTarget(name: "E2EEFFI", path: "E2EEFFI.xcframework"),
        .target(name: "E2EE", dependencies: ["E2EEFFI"], path: "Sources/E2EE"),
    ]
)
