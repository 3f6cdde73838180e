// dicom-gw: the only code tests do not share. Everything lives in gw_app.
#include "app/cli.h"

int main(int argc, char** argv) { return gw::app::run_cli(argc, argv); }
