// The AVX-512 build of the packed kernel (compiled with -mavx512f -mfma; core/CMakeLists.txt).
#define SOFTSERVE_PACKED_VECTOR_FLOATS 16
#include "core/model/cpu_packed_kernel.inc"

void RunTileAvx512(const Tile& t) { RunTile(t); }

}  // namespace softserve::core::packed_kernel
