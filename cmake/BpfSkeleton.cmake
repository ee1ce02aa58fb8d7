# bpf_skeleton(NAME SOURCES...): compiles each .bpf.c with clang (CO-RE), links them into one
# object with `bpftool gen object`, generates <NAME>.skel.h and exposes it as the INTERFACE
# library <NAME>_skel.
function(bpf_skeleton name)
  # -Wno-unused-parameter: libbpf 1.1's BPF_PROG declares a ctx argument that most programs
  # never read, and a tracepoint fixes the arguments a program receives.
  set(warnings -Wall -Wextra -Wno-unused-parameter)
  if(TCPTRAIL_WERROR)
    list(APPEND warnings -Werror)
  endif()
  set(objects)
  foreach(src IN LISTS ARGN)
    get_filename_component(base ${src} NAME_WE)
    set(obj ${CMAKE_CURRENT_BINARY_DIR}/${base}.bpf.o)
    add_custom_command(
      OUTPUT ${obj}
      COMMAND ${BPF_CLANG} -g -O2 ${warnings} -target bpf -mcpu=v3 -D__TARGET_ARCH_${BPF_TARGET_ARCH}
              -I${VMLINUX_DIR} -I${CMAKE_SOURCE_DIR}/include -I${CMAKE_CURRENT_SOURCE_DIR}
              -MD -MF ${obj}.d -c ${CMAKE_CURRENT_SOURCE_DIR}/${src} -o ${obj}
      DEPENDS ${src}
      DEPFILE ${obj}.d
      COMMENT "BPF ${src}"
      VERBATIM)
    list(APPEND objects ${obj})
  endforeach()
  set(linked ${CMAKE_CURRENT_BINARY_DIR}/${name}.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
  add_custom_command(
    OUTPUT ${linked} ${skel}
    COMMAND ${BPFTOOL} gen object ${linked} ${objects}
    COMMAND ${BPFTOOL} gen skeleton ${linked} name ${name} > ${skel}
    DEPENDS ${objects}
    COMMENT "BPF skeleton ${name}"
    VERBATIM)
  add_custom_target(${name}_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_gen)
  target_include_directories(${name}_skel SYSTEM INTERFACE ${CMAKE_CURRENT_BINARY_DIR})
endfunction()
