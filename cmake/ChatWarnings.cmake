# Warning flags for our own targets only (linked PRIVATE). One flag per line.
add_library(chat_warnings INTERFACE)
target_compile_options(chat_warnings INTERFACE
  -Wall
  -Wextra
  -Wshadow                 # a local hiding another is a bug waiting to happen
  -Wstrict-prototypes      # f() means f(void)
  -Wmissing-prototypes     # every non-static function has a header declaration
  -Wformat=2               # printf-family format checks, incl. non-literal formats
  -Wvla                    # no variable-length arrays: stack size must be bounded
  -Wcast-qual              # do not silently drop const
  -Wpointer-arith          # no arithmetic on void *
  -Wundef                  # undefined macros in #if are typos
  -Wwrite-strings          # string literals are const
)
if(CHAT_WERROR)
  target_compile_options(chat_warnings INTERFACE -Werror)
endif()
if(CHAT_ANALYZER AND CMAKE_C_COMPILER_ID STREQUAL "GNU")
  target_compile_options(chat_warnings INTERFACE -fanalyzer)
endif()
