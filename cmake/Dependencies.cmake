# Every dependency comes from a Debian 12 package (scripts/setup.sh installs them).
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED)  # no version file ships: give no version
find_package(yaml-cpp REQUIRED)

find_package(Poco 1.11 REQUIRED COMPONENTS Foundation Net JSON Util)
pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET libpqxx)

# MySQL Connector/C++ 1.1 ships neither a CMake config nor a pkg-config file.
find_path(MYSQLCPPCONN_INCLUDE_DIR NAMES mysql_driver.h PATH_SUFFIXES cppconn)
find_library(MYSQLCPPCONN_LIBRARY NAMES mysqlcppconn)
if(NOT MYSQLCPPCONN_INCLUDE_DIR OR NOT MYSQLCPPCONN_LIBRARY)
  message(FATAL_ERROR "MySQL Connector/C++ not found: apt-get install libmysqlcppconn-dev")
endif()
add_library(mysqlcppconn::mysqlcppconn UNKNOWN IMPORTED)
set_target_properties(mysqlcppconn::mysqlcppconn PROPERTIES
  IMPORTED_LOCATION "${MYSQLCPPCONN_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${MYSQLCPPCONN_INCLUDE_DIR}")

if(TXC_BUILD_TESTS)
  find_package(GTest CONFIG REQUIRED)
endif()
if(TXC_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
