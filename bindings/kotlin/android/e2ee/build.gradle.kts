// The Android library module of the e2ee SDK. `../build.sh` fills src/main/jniLibs/<abi>/
// with libe2ee_ffi.so and src/main/kotlin/ with the generated bindings before Gradle runs.
plugins {
    id("com.android.library")
    kotlin("android")
}

android {
    namespace = "dev.e2ee"
    compileSdk = 35
    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
    }
}

dependencies {
    // JNA with its Android native parts (the @aar), the version the JVM suite is tested with.
    implementation("net.java.dev.jna:jna:5.13.0@aar")
    // The generated Kotlin's Android cleaner annotates with androidx.annotation.
    implementation("androidx.annotation:annotation:1.9.1")
}
