// The operator web page: a static, dependency-free page (index.html, app.js, style.css in this
// directory) that lists transactions and runs retry, abort and resolve through the /v1 API.
//
//   GET /ui/           index.html
//   GET /ui/app.js     the script
//   GET /ui/style.css  the style sheet
//   GET /ui            a redirect to /ui/ (the page's relative links need the trailing slash)
//
// The files are compiled into the binary (CMake writes them into a generated header), so txcoord
// never reads the source tree at run time and the page always matches the binary's API. Every
// answer carries Cache-Control: no-cache (a new binary is seen at once) and a
// Content-Security-Policy that allows only the page's own files: whatever a participant puts in a
// last_error can never run as script.
#pragma once

#include "coordinator/server/router.h"

namespace txc::ui {

void AddUiRoutes(server::Router& router);

}  // namespace txc::ui
