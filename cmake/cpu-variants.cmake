# Which of llama.cpp's x86-64 CPU backend variants the build compiles.
#
# llama-cpp-sys-2 builds llama.cpp with GGML_CPU_ALL_VARIANTS, fourteen x86-64 variants, and
# offers no option for a subset; each costs about forty seconds of compilation on two cores.
# .cargo/config.toml names this file as CMAKE_PROJECT_INCLUDE (llama-cpp-sys-2 passes CMAKE_*
# variables from the environment to CMake), so CMake includes it after llama.cpp's and ggml's
# project() calls. It watches GGML_CPU_TAG_NAME, which ggml's ggml_add_cpu_backend_variant sets
# just before it calls ggml_add_cpu_backend_variant_impl, and the first time that happens it
# replaces ggml_add_cpu_backend_variant_impl with a filter: a variant on the list below is built
# by the original function (which CMake keeps as _ggml_add_cpu_backend_variant_impl), any other
# is skipped. Builds for other architectures (ARM, PowerPC, ...) build all their variants.
#
# The list keeps one variant per x86-64 level that servers have (src/llama/cpu.rs, BUILT_X86,
# must name the same ones; tests/cpu_variants.rs checks the build against both):
#   x64          any x86-64 CPU
#   sse42        SSE4.2 without AVX (Nehalem/Westmere Xeons, early Opterons)
#   sandybridge  AVX without AVX2 (Sandy Bridge/Ivy Bridge Xeons, E5-2600 v1/v2)
#   haswell      AVX2+FMA (Haswell to Coffee Lake, Zen 1-3)
#   skylakex     AVX-512 F/BW/DQ/VL (Skylake-SP, Cascade Lake)
#   icelake      + AVX-512 VBMI/VNNI (Ice Lake-SP)
#   alderlake    AVX2 + AVX-VNNI without AVX-512 (Alder Lake and later client cores, Sierra Forest)
#   zen4         + AVX-512 BF16 (Zen 4/5; Sapphire Rapids and later when AMX is not usable)
#   sapphirerapids + AMX-INT8 (Sapphire Rapids and later; its kernels fault on some VMs that
#                report AMX, so it runs only after its check in a child process passed)
# Left out: ivybridge and piledriver (F16C/FMA on AVX-only CPUs: sandybridge runs there),
# cannonlake, cascadelake and cooperlake (skylakex runs there).
#
# After editing the list, rebuild llama.cpp: cargo clean -p llama-cpp-sys-2 --release

include_guard(GLOBAL)

set_property(GLOBAL PROPERTY MINERVA_CPU_VARIANTS_X86
    x64 sse42 sandybridge haswell skylakex icelake alderlake zen4 sapphirerapids)

function(_minerva_filter_cpu_variants variable access value)
    if (NOT access STREQUAL "MODIFIED_ACCESS")
        return()
    endif()
    get_property(installed GLOBAL PROPERTY MINERVA_CPU_VARIANT_FILTER)
    if (installed)
        return()
    endif()
    set_property(GLOBAL PROPERTY MINERVA_CPU_VARIANT_FILTER ON)
    if (NOT COMMAND ggml_add_cpu_backend_variant_impl)
        message(FATAL_ERROR "cmake/cpu-variants.cmake: ggml_add_cpu_backend_variant_impl is not "
            "defined when GGML_CPU_TAG_NAME is first set; llama.cpp's CMake changed, update this file")
    endif()
    function(ggml_add_cpu_backend_variant_impl tag_name)
        get_property(wanted GLOBAL PROPERTY MINERVA_CPU_VARIANTS_X86)
        if (NOT GGML_SYSTEM_ARCH STREQUAL "x86" OR "${tag_name}" STREQUAL "" OR tag_name IN_LIST wanted)
            _ggml_add_cpu_backend_variant_impl("${tag_name}")
        else()
            message(STATUS "CPU variant ${tag_name}: not built (cmake/cpu-variants.cmake)")
        endif()
    endfunction()
endfunction()

variable_watch(GGML_CPU_TAG_NAME _minerva_filter_cpu_variants)
