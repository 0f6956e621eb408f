// The AVX2 build of the packed kernel (compiled with -mavx2 -mfma; core/CMakeLists.txt).
#define SOFTSERVE_PACKED_VECTOR_FLOATS 8
#include "core/model/cpu_packed_kernel.inc"

void RunTileAvx2(const Tile& t) { RunTile(t); }

}  // namespace softserve::core::packed_kernel
