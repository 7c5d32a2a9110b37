//! `uniffi-bindgen`, built from the same uniffi version as `e2ee-ffi`, so the generated
//! Kotlin, Swift and Python always match the library: run it as
//! `cargo run -p e2ee-uniffi-bindgen -- generate --library target/debug/libe2ee_ffi.so --language kotlin --out-dir OUT`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
