# softserve_proto_library(<target> PROTOS <files relative to PROTO_ROOT> PROTO_ROOT <dir>):
# generates C++ messages and gRPC stubs into the build tree and builds them as one library.
function(softserve_proto_library target)
  cmake_parse_arguments(ARG "" "PROTO_ROOT" "PROTOS" ${ARGN})
  set(out ${CMAKE_CURRENT_BINARY_DIR}/gen)
  file(MAKE_DIRECTORY ${out})
  find_program(SOFTSERVE_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
  set(srcs)
  foreach(proto ${ARG_PROTOS})
    get_filename_component(stem ${proto} NAME_WE)
    get_filename_component(dir ${proto} DIRECTORY)
    set(base ${out}/${dir}/${stem})
    list(APPEND srcs ${base}.pb.cc ${base}.grpc.pb.cc)
    add_custom_command(
      OUTPUT ${base}.pb.cc ${base}.pb.h ${base}.grpc.pb.cc ${base}.grpc.pb.h
      COMMAND protobuf::protoc
        --cpp_out=${out} --grpc_out=${out}
        --plugin=protoc-gen-grpc=${SOFTSERVE_GRPC_CPP_PLUGIN}
        -I ${ARG_PROTO_ROOT} ${ARG_PROTO_ROOT}/${proto}
      DEPENDS ${ARG_PROTO_ROOT}/${proto} protobuf::protoc
      COMMENT "Generating C++ and gRPC code for ${proto}")
  endforeach()
  add_library(${target} STATIC ${srcs})
  target_include_directories(${target} SYSTEM PUBLIC ${out})
  target_link_libraries(${target} PUBLIC gRPC::grpc++ protobuf::libprotobuf)
endfunction()
