# txc_warnings: linked PRIVATE by every target of ours, so the flags never reach
# dependencies (whose headers come in as SYSTEM includes through imported targets).
add_library(txc_warnings INTERFACE)
target_compile_options(txc_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
  -Wnon-virtual-dtor -Wcast-align -Wunused -Woverloaded-virtual -Wimplicit-fallthrough)
if(TXC_WERROR)
  target_compile_options(txc_warnings INTERFACE -Werror)
endif()
