#!/usr/bin/env bash
# Installs what is missing (Debian 12, as root), builds `mesh` in release mode and runs it
# on the bundled sample photos: models, previews and depth maps land in uploads/models/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/setup.sh

myroom_install "${MYROOM_PACKAGES[@]}"
myroom_check_swift

echo "==> building mesh (release)"
swift build -c release --product mesh
mesh="$(swift build -c release --show-bin-path)/mesh"

echo "==> mesh on the samples"
mkdir -p uploads/models
"$mesh" samples/lamp_and_chair.jpg samples/cube.jpg samples/dresser.jpg samples/room.jpg \
    --format obj --format glb --preview uploads/models/ --depth-out uploads/models/ "$@"
echo "==> done: open the .obj or .glb files in uploads/models/ (previews: *_preview.png)"
