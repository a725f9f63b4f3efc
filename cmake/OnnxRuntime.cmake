# Find ONNX Runtime and define the imported target onnxruntime::onnxruntime.
# Order: ONNXRUNTIME_ROOT (cache variable or environment; official release layout include/, lib/),
# then the system (pkg-config libonnxruntime, then CMake package onnxruntime),
# then scripts/fetch-onnxruntime.sh, which assembles the pinned copy in the user's cache.
# Sets KVCACHE_ORT_SOURCE (how it was found) and KVCACHE_ORT_LIBDIR (for the rpath).

set(ONNXRUNTIME_ROOT "$ENV{ONNXRUNTIME_ROOT}" CACHE PATH "ONNX Runtime tree with include/ and lib/")
if(NOT "$ENV{ONNXRUNTIME_ROOT}" STREQUAL "")
  # The environment wins over a stale cache entry: `ONNXRUNTIME_ROOT=... make` must take effect.
  set(ONNXRUNTIME_ROOT "$ENV{ONNXRUNTIME_ROOT}" CACHE PATH "" FORCE)
endif()

function(_kvc_ort_from_root root source)
  find_path(_kvc_ort_inc onnxruntime_c_api.h PATHS "${root}/include" "${root}/include/onnxruntime"
            NO_DEFAULT_PATH NO_CACHE)
  find_library(_kvc_ort_lib NAMES onnxruntime libonnxruntime.so.1 PATHS "${root}/lib" "${root}/lib64"
               NO_DEFAULT_PATH NO_CACHE)
  if(NOT _kvc_ort_inc OR NOT _kvc_ort_lib)
    message(FATAL_ERROR "ONNX Runtime not usable at ${root} (${source}): expected "
                        "include/onnxruntime_c_api.h and lib/libonnxruntime.so")
  endif()
  add_library(onnxruntime::onnxruntime SHARED IMPORTED GLOBAL)
  set_target_properties(onnxruntime::onnxruntime PROPERTIES IMPORTED_LOCATION "${_kvc_ort_lib}"
                        INTERFACE_INCLUDE_DIRECTORIES "${_kvc_ort_inc}")
  get_filename_component(_dir "${_kvc_ort_lib}" DIRECTORY)
  set(KVCACHE_ORT_LIBDIR "${_dir}" PARENT_SCOPE)
  set(KVCACHE_ORT_SOURCE "${source}: ${_kvc_ort_lib}" PARENT_SCOPE)
endfunction()

if(ONNXRUNTIME_ROOT)
  _kvc_ort_from_root("${ONNXRUNTIME_ROOT}" "ONNXRUNTIME_ROOT")
else()
  find_package(PkgConfig QUIET)
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(KVC_PC_ORT QUIET IMPORTED_TARGET GLOBAL libonnxruntime)
  endif()
  if(KVC_PC_ORT_FOUND)
    add_library(onnxruntime::onnxruntime ALIAS PkgConfig::KVC_PC_ORT)
    set(KVCACHE_ORT_LIBDIR "${KVC_PC_ORT_LIBDIR}")
    set(KVCACHE_ORT_SOURCE "pkg-config libonnxruntime ${KVC_PC_ORT_VERSION}")
  else()
    find_package(onnxruntime CONFIG QUIET)
    if(onnxruntime_FOUND AND TARGET onnxruntime::onnxruntime)
      get_target_property(_loc onnxruntime::onnxruntime LOCATION)
      get_filename_component(KVCACHE_ORT_LIBDIR "${_loc}" DIRECTORY)
      set(KVCACHE_ORT_SOURCE "CMake package onnxruntime ${onnxruntime_VERSION}")
    else()
      message(STATUS "ONNX Runtime: not in ONNXRUNTIME_ROOT nor on the system; the pinned copy (scripts/fetch-onnxruntime.sh)")
      execute_process(COMMAND "${PROJECT_SOURCE_DIR}/scripts/fetch-onnxruntime.sh"
                      OUTPUT_VARIABLE _root OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
      if(NOT _rc EQUAL 0)
        message(FATAL_ERROR "scripts/fetch-onnxruntime.sh failed (see above). Set ONNXRUNTIME_ROOT "
                            "to an ONNX Runtime release (include/, lib/) to use your own copy.")
      endif()
      _kvc_ort_from_root("${_root}" "fetched")
    endif()
  endif()
endif()
message(STATUS "ONNX Runtime: ${KVCACHE_ORT_SOURCE}")
