#pragma once
/// Value representations whose value is bytes or items (OB, OW, SQ, pixel data…): DCMTK renders
/// them as text only at great cost (pixel data as hex), so neither the tag extraction nor the
/// routing rules ever ask for their text. Header-only, for the DCMTK-using .cpp files.

#include <dcmtk/config/osconfig.h>  // must precede other DCMTK headers
#include <dcmtk/dcmdata/dcvr.h>

namespace gw::dicom {

/// UN is not included: whether an unknown VR is bytes depends on where it comes from.
inline bool is_binary_vr(DcmEVR vr) {
  switch (vr) {
    case EVR_OB:
    case EVR_OD:
    case EVR_OF:
    case EVR_OL:
    case EVR_OV:
    case EVR_OW:
    case EVR_ox:
    case EVR_px:
    case EVR_SQ:
    case EVR_pixelSQ:
    case EVR_PixelData:
    case EVR_OverlayData:
      return true;
    default:
      return false;
  }
}

}  // namespace gw::dicom
