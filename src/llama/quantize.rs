//! llama.cpp's own quantiser (`llama_model_quantize`): a GGUF of F16/F32 weights rewritten in a
//! file type with the tensor type mix llama.cpp chooses for it (K-quant files keep some rows in
//! Q6_K or Q8_0, fall back to Q5_0/Q8_0 where a row length is not a multiple of 256, ...), which
//! is what real downloads contain.

use std::ffi::CString;
use std::path::Path;

use llama_cpp_sys_2 as sys;

use super::LlamaError;
use crate::gguf::FileType;

/// llama.cpp's `llama_ftype` for a file type.
fn ftype(t: FileType) -> sys::llama_ftype {
    use FileType::*;
    match t {
        F16 => sys::LLAMA_FTYPE_MOSTLY_F16,
        BF16 => sys::LLAMA_FTYPE_MOSTLY_BF16,
        Q8_0 => sys::LLAMA_FTYPE_MOSTLY_Q8_0,
        Q6_K => sys::LLAMA_FTYPE_MOSTLY_Q6_K,
        Q5_K_M => sys::LLAMA_FTYPE_MOSTLY_Q5_K_M,
        Q5_K_S => sys::LLAMA_FTYPE_MOSTLY_Q5_K_S,
        Q5_0 => sys::LLAMA_FTYPE_MOSTLY_Q5_0,
        Q4_K_M => sys::LLAMA_FTYPE_MOSTLY_Q4_K_M,
        Q4_K_S => sys::LLAMA_FTYPE_MOSTLY_Q4_K_S,
        Q4_0 => sys::LLAMA_FTYPE_MOSTLY_Q4_0,
        Q3_K_M => sys::LLAMA_FTYPE_MOSTLY_Q3_K_M,
        Q3_K_L => sys::LLAMA_FTYPE_MOSTLY_Q3_K_L,
        Q2_K => sys::LLAMA_FTYPE_MOSTLY_Q2_K,
        IQ4_XS => sys::LLAMA_FTYPE_MOSTLY_IQ4_XS,
    }
}

/// Quantise `src` (F16/F32 weights) into `dst` as `file_type` with `threads` threads. `dst` is
/// written by llama.cpp in place: callers that need atomicity pass a temporary name and rename.
/// The backend must be initialised ([`super::init`]).
pub fn quantize(
    src: &Path,
    dst: &Path,
    file_type: FileType,
    threads: u32,
) -> Result<(), LlamaError> {
    let err = |detail: String| LlamaError::Quantize {
        path: src.to_path_buf(),
        detail,
    };
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_encoded_bytes())
            .map_err(|_| err(format!("`{}` contains a NUL byte", p.display())))
    };
    let (src_c, dst_c) = (c(src)?, c(dst)?);
    // SAFETY: the default parameters are plain values; every pointer in them is null.
    let mut params = unsafe { sys::llama_model_quantize_default_params() };
    params.nthread = threads.max(1) as i32;
    params.ftype = ftype(file_type);
    // SAFETY: both strings are NUL-terminated and outlive the call; `params` is a valid struct
    // whose pointers are null (no imatrix, overrides or pruning).
    let rc = unsafe { sys::llama_model_quantize(src_c.as_ptr(), dst_c.as_ptr(), &params) };
    if rc != 0 {
        return Err(err(format!("llama_model_quantize returned {rc}")));
    }
    Ok(())
}
