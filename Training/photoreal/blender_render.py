"""Photoreal training scenes, path-traced by Blender's Cycles; run by Training/scripts/make_photoreal.py:

  blender -b --factory-startup --python Training/photoreal/blender_render.py -- \
      --out SHARD.npz --split train --scenes 0,1,2 --views 4 --size 224 --samples 32 --threads 2

Every scene is a function of (split, scene seed): a target piece of real furniture (Sweet Home 3D catalogs,
at its catalog size in metres) with other furniture and small items around, behind, on and in front of it,
in a room (3 walls), a corner, against one wall or before an open backdrop; photographs as wallpaper, floor,
rugs, framed pictures, the view through windows and the backdrop; sun, sky, window, area and lamp light.
A tenth of the scenes are whole rooms without a target (relief-mode views; empty mask). Each scene is seen
from `--views` phone-like cameras (vertical fov 45-75 deg, height 0.8-1.8 m, tilt and roll, the target
filling 10-70 % of the frame, sometimes cut by the frame's edge).

Labels come from ray casting the same triangles at the pixel centres of the same pinhole camera
(mathutils BVH), so they are exact: front = camera z-depth of the first hit (metres, capped at MAX_DEPTH);
mask = the first hit is the target; back = z-depth where the ray leaves the target (the next surface of the
target after the first hit; front where there is none or off the mask); fg = the first hit is any furniture;
normal = camera-frame normal of the first hit. The film is linear HDR from Cycles; the camera model
(auto exposure with an EV offset, white balance, sensor noise, blur, vignetting, tone curve, JPEG) is applied
here with the scene's random stream, so a shard is reproducible from its seeds.
"""
import argparse
import faulthandler
import math
import os
import sys
import tempfile
import time

import bpy
import numpy as np
from mathutils import Matrix, Vector
from mathutils.bvhtree import BVHTree

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from photoreal import assets as A  # noqa: E402

MAX_DEPTH = 30.0
SPLIT_SALT = {"train": 0x51A7, "val": 0x7A11, "eval": 0xE7A1, "test": 0x7E57}
N_TARGET_VERTS = 256
# back-depth rule: 1 = the target's next surface after the first hit (shards without `back_rule`);
# 2 = carried on through the gaps the target encloses (Scene.leave_target)
BACK_RULE = 2
BACK_MAX_GAPS = 6
ENCLOSURE_CELLS = 20
ENCLOSURE_VOTES = 12
RELABEL_TOLERANCE = 0.002   # share of a view's pixels where a rebuilt scene may differ (float32 cameras)


# ----------------------------------------------------------------------------- small helpers
def rgb_from_hsv(h, s, v):
    import colorsys
    return colorsys.hsv_to_rgb(h % 1.0, s, v)


def srgb_to_linear(c):
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


class Assets:
    def __init__(self, cache, split):
        self.cache = cache
        models = A.read_catalogs()
        held = A.read_heldout()
        train, heldout = A.split_models(models, held)
        pool = heldout if split in ("val", "eval") else train
        # targets: furniture-sized (the object a user photographs to model), not plugs or coins
        self.targets = [m for m in pool if m["category"] not in A.TARGET_EXCLUDED and not m["door_or_window"]
                        and max(m["size_cm"]) >= 30 and m["size_cm"][2] >= 15]
        self.clutter = [m for m in pool if m["category"] not in A.CLUTTER_EXCLUDED and not m["door_or_window"]]
        self.small = [m for m in self.clutter if max(m["size_cm"]) <= 45 and m["elevation_cm"] == 0]
        self.openings = [m for m in pool if m["door_or_window"]]
        self.photos = [os.path.join(cache, "photos", p["file"]) for p in A.prepare_photos(cache)]
        # the training models' own texture images (wood, fabric, stone...) also dress floors and walls
        tex = []
        for m in train:
            d = os.path.dirname(A.model_path(cache, m))
            for n in sorted(os.listdir(d)):
                if n.lower().endswith((".jpg", ".jpeg", ".png")):
                    p = os.path.join(d, n)
                    if os.path.getsize(p) > 20_000:
                        tex.append(p)
        self.textures = sorted(set(tex))


# ----------------------------------------------------------------------------- materials
def _image(path):
    return bpy.data.images.load(path, check_existing=True)


def material(name, color=(0.8, 0.8, 0.8), image=None, tile=1.0, rough=0.5, spec=0.5, metal=0.0, emit=0.0,
             tint=(1, 1, 1)):
    m = bpy.data.materials.new(name)
    m.use_nodes = True
    nt = m.node_tree
    p = nt.nodes["Principled BSDF"]
    p.inputs["Roughness"].default_value = rough
    p.inputs["Specular"].default_value = spec
    p.inputs["Metallic"].default_value = metal
    if image is not None:
        tc = nt.nodes.new("ShaderNodeTexCoord")
        mp = nt.nodes.new("ShaderNodeMapping")
        mp.inputs["Scale"].default_value = (1.0 / tile, 1.0 / tile, 1.0)
        it = nt.nodes.new("ShaderNodeTexImage")
        it.image = _image(image)
        it.extension = "REPEAT"
        mix = nt.nodes.new("ShaderNodeMixRGB")
        mix.blend_type = "MULTIPLY"
        mix.inputs["Fac"].default_value = 1.0
        mix.inputs["Color2"].default_value = (*tint, 1)
        nt.links.new(tc.outputs["UV"], mp.inputs["Vector"])
        nt.links.new(mp.outputs["Vector"], it.inputs["Vector"])
        nt.links.new(it.outputs["Color"], mix.inputs["Color1"])
        nt.links.new(mix.outputs["Color"], p.inputs["Base Color"])
        if emit > 0:
            nt.links.new(it.outputs["Color"], p.inputs["Emission"])
    else:
        p.inputs["Base Color"].default_value = (*color, 1)
        if emit > 0:
            p.inputs["Emission"].default_value = (*color, 1)
    p.inputs["Emission Strength"].default_value = emit
    return m


class Materials:
    def __init__(self, rng, assets):
        self.r, self.a = rng, assets

    def photo(self, tile=None, **kw):
        return material("photo", image=self.a.photos[self.r.integers(len(self.a.photos))],
                        tile=tile or self.r.uniform(0.6, 3.0), **kw)

    def paint(self):
        r = self.r
        c = srgb_to_linear(rgb_from_hsv(r.random(), r.uniform(0, 0.35), r.uniform(0.45, 0.95)))
        return material("paint", color=tuple(c), rough=r.uniform(0.5, 1.0), spec=r.uniform(0.1, 0.5))

    def texture(self, tile=None):
        r = self.r
        tint = tuple(srgb_to_linear(rgb_from_hsv(r.random(), r.uniform(0, 0.25), r.uniform(0.7, 1.0))))
        return material("texture", image=self.a.textures[r.integers(len(self.a.textures))],
                        tile=tile or r.uniform(0.3, 1.5), rough=r.uniform(0.2, 0.9), spec=r.uniform(0.2, 0.6),
                        tint=tint)

    def wall(self):
        u = self.r.random()
        return self.paint() if u < 0.5 else self.photo(rough=0.8) if u < 0.75 else self.texture()

    def floor(self):
        u = self.r.random()
        return self.texture(tile=self.r.uniform(0.4, 2.0)) if u < 0.6 else self.photo(rough=0.4) if u < 0.85 \
            else self.paint()


# ----------------------------------------------------------------------------- geometry
def mesh_object(name, verts, faces, uvs, mat, kind):
    me = bpy.data.meshes.new(name)
    me.from_pydata([tuple(v) for v in verts], [], [tuple(f) for f in faces])
    uv = me.uv_layers.new()
    for li, loop in enumerate(me.loops):
        uv.data[li].uv = uvs[loop.vertex_index]
    me.materials.append(mat)
    ob = bpy.data.objects.new(name, me)
    ob["kind"] = kind
    bpy.context.scene.collection.objects.link(ob)
    return ob


def quad(name, origin, u, v, mat, kind, tile_uv=True):
    """A rectangle origin + [0,1]u + [0,1]v; UVs in metres (tile_uv) or 0..1 over the rectangle."""
    o, u, v = Vector(origin), Vector(u), Vector(v)
    verts = [o, o + u, o + u + v, o + v]
    su, sv = (u.length, v.length) if tile_uv else (1.0, 1.0)
    uvs = [(0, 0), (su, 0), (su, sv), (0, sv)]
    return mesh_object(name, verts, [(0, 1, 2, 3)], uvs, mat, kind)


def import_model(m, cache):
    """Import a catalog OBJ; apply its modelRotation and scale it to its catalog size (metres); bottom
    centre at the origin, front facing -Y (Blender Z up). Mesh data in world space, identity matrices."""
    return import_model_scaled(m, cache)[0]


def import_model_scaled(m, cache):
    """import_model, also returning the per-axis scale (x, y, z) that fitted the OBJ to the catalog size:
    near-equal factors mean the rotation and axes agree with the catalog's measurements."""
    before = set(bpy.data.objects)
    bpy.ops.wm.obj_import(filepath=A.model_path(cache, m), forward_axis="NEGATIVE_Z", up_axis="Y")
    parts = [o for o in bpy.data.objects if o not in before and o.type == "MESH"]
    for o in set(bpy.data.objects) - before - set(parts):
        bpy.data.objects.remove(o)
    # Some catalog OBJs hold degenerate faces; an unvalidated mesh can crash triangulation later.
    for o in parts:
        o.data.validate(clean_customdata=False)
    parts = [o for o in parts if len(o.data.polygons) > 0]
    Rb = Matrix.Identity(4)
    if m["rotation"]:
        rot = m["rotation"]
        R = Matrix([rot[0:3], rot[3:6], rot[6:9]])  # OBJ frame (Y up)
        C = Matrix(((1, 0, 0), (0, 0, -1), (0, 1, 0)))  # OBJ -> Blender axes
        Rb3 = C @ R @ C.inverted()
        # Two catalog entries (Scopia#black_table, #table4) carry a stale modelRotation: their catalog size
        # fits the unrotated model (per-axis fit 1.00) and the rotated one 2.4-3.6x unevenly. Drop such a
        # rotation rather than stretch the model.
        lo, hi = _extent(parts)
        ext_raw = hi - lo  # Blender axes x (width), y (depth), z (height)
        ext_rot = np.abs(np.array(Rb3)) @ ext_raw
        want = np.array(m["size_cm"], np.float64)
        uneven = lambda e: (want / np.maximum(e, 1e-9)).max() / (want / np.maximum(e, 1e-9)).min()  # noqa: E731
        if not (uneven(ext_rot) > 1.5 and uneven(ext_raw) < 1.05):
            Rb = Rb3.to_4x4()
    for o in parts:
        o.data.transform(Rb @ o.matrix_world)
        o.matrix_world = Matrix.Identity(4)
    co = np.concatenate([_verts(o) for o in parts]) if parts else np.zeros((0, 3))
    if len(co) == 0:
        raise RuntimeError(f"{m['id']}: no geometry")
    lo, hi = co.min(0), co.max(0)
    w, d, h = (v / 100.0 for v in m["size_cm"])
    s = np.array([w, d, h]) / np.maximum(hi - lo, 1e-6)
    S = Matrix.Diagonal((*s, 1.0))
    T = Matrix.Translation((-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]))
    for o in parts:
        o.data.transform(S @ T)
    return parts, s


def _extent(parts):
    v = np.concatenate([_verts(o) @ np.array(o.matrix_world.to_3x3()).T + np.array(o.matrix_world.translation)
                        for o in parts])
    return v.min(0), v.max(0)


def _verts(o):
    me = o.data
    a = np.empty(len(me.vertices) * 3, np.float32)
    me.vertices.foreach_get("co", a)
    return a.reshape(-1, 3).astype(np.float64)


def place(parts, yaw, x, y, z, kind, tag):
    M = Matrix.Translation((x, y, z)) @ Matrix.Rotation(yaw, 4, "Z")
    for o in parts:
        o.data.transform(M)
        o["kind"] = kind
        o["tag"] = tag
    return M


def footprint(m, yaw, x, y, margin=0.03):
    """Axis-aligned 2D box of a model's rotated footprint."""
    w, d = m["size_cm"][0] / 100 / 2 + margin, m["size_cm"][1] / 100 / 2 + margin
    c, s = abs(math.cos(yaw)), abs(math.sin(yaw))
    ex, ey = c * w + s * d, s * w + c * d
    return (x - ex, y - ey, x + ex, y + ey)


def overlaps(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# ----------------------------------------------------------------------------- scene
class Scene:
    """One random scene; fields used by the camera and the labeller."""

    def __init__(self, seed, split, assets, size, samples, threads):
        self.rng = r = np.random.default_rng([SPLIT_SALT[split], seed])
        self.seed, self.assets = seed, assets
        bpy.ops.wm.read_factory_settings(use_empty=True)
        sc = bpy.context.scene
        sc.render.engine = "CYCLES"
        sc.cycles.device = "CPU"
        sc.cycles.samples = samples
        sc.cycles.use_denoising = False
        sc.cycles.use_adaptive_sampling = True
        sc.cycles.adaptive_threshold = 0.02
        sc.cycles.max_bounces = 6
        sc.cycles.diffuse_bounces = 3
        sc.cycles.glossy_bounces = 2
        sc.cycles.transmission_bounces = 4
        sc.cycles.transparent_max_bounces = 8
        sc.cycles.caustics_reflective = False
        sc.cycles.caustics_refractive = False
        sc.cycles.blur_glossy = 1.0
        sc.cycles.sample_clamp_indirect = 8.0
        sc.cycles.seed = seed % (2 ** 31)
        sc.render.threads_mode = "FIXED"
        sc.render.threads = threads
        sc.render.resolution_x = sc.render.resolution_y = size
        sc.render.resolution_percentage = 100
        sc.render.image_settings.file_format = "OPEN_EXR"
        sc.render.image_settings.color_depth = "32"
        sc.view_settings.view_transform = "Standard"
        self.mats = Materials(r, assets)
        self.room_view = r.random() < 0.1
        self.target_model = None if self.room_view else assets.targets[int(r.integers(len(assets.targets)))]
        self.models = []  # (model dict, footprint, parts, matrix)
        self.build_room()
        self.build_furniture()
        self.build_lights()

    # -- room shell
    def build_room(self):
        r = self.rng
        self.layout = r.choice(["room", "corner", "wall", "open"], p=[0.4, 0.2, 0.2, 0.2])
        if self.room_view and self.layout == "open":
            self.layout = "room"
        W, D = r.uniform(3.0, 7.0), r.uniform(3.0, 7.0)
        H = r.uniform(2.4, 3.2)
        self.H = H
        # the target stands near the origin; the back wall is behind it (+Y), the camera in front (-Y)
        # the back wall: flush behind the target (placed against it) or up to 1.2 m behind it
        half_d = self.target_model["size_cm"][1] / 200 if self.target_model else 0.3
        if self.target_model and self.target_model["elevation_cm"] > 0 and self.layout == "open":
            self.layout = "wall"  # wall-mounted furniture needs its wall
        self.against = self.target_model is not None and self.layout != "open" and (
            self.target_model["elevation_cm"] > 0 or r.random() < 0.45)
        if self.target_model and not self.against:  # free-standing, any yaw: keep its turning circle clear
            half_d = max(self.target_model["size_cm"][:2]) / 200
        back = half_d + (0.02 if self.against else r.uniform(0.05, 1.2))
        self.x0 = -W * r.uniform(0.3, 0.7)
        self.x1 = self.x0 + W
        self.y1 = back
        self.y0 = self.y1 - D
        floor_m = self.mats.floor()
        ext = 40.0 if self.layout == "open" else 0.0
        quad("floor", (self.x0 - ext - 1, self.y0 - ext - 6, 0), (self.x1 - self.x0 + 2 * ext + 2, 0, 0),
             (0, self.y1 - self.y0 + 2 * ext + 7, 0), floor_m, "floor")
        walls = {"room": ["back", "left", "right"], "corner": ["back", r.choice(["left", "right"])],
                 "wall": ["back"], "open": []}[self.layout]
        self.walls = walls
        wall_m = self.mats.wall()
        for wname in walls:
            m = wall_m if r.random() < 0.7 else self.mats.wall()
            if wname == "back":
                o, u = (self.x0 - 1, self.y1, 0), (self.x1 - self.x0 + 2, 0, 0)
            elif wname == "left":
                o, u = (self.x0, self.y0 - 6, 0), (0, self.y1 - self.y0 + 6, 0)
            else:
                o, u = (self.x1, self.y1, 0), (0, -(self.y1 - self.y0 + 6), 0)
            quad("wall_" + wname, o, u, (0, 0, H), m, "wall")
            self.decorate_wall(wname, o, u)
        if self.layout == "open":
            dist = r.uniform(6, 14)
            quad("backdrop", (-20, self.y1 + dist, -1), (40, 0, 0), (0, 0, 18),
                 self.mats.photo(tile=None, emit=r.uniform(0.3, 1.5)) if r.random() < 0.8 else self.mats.paint(),
                 "backdrop")
            self.backdrop_dist = dist
        if r.random() < 0.45:  # a rug under or in front of the target
            rw, rd = r.uniform(1.2, 3.0), r.uniform(0.9, 2.2)
            cx, cy = r.uniform(-0.5, 0.5), r.uniform(-1.2, 0.3)
            quad("rug", (cx - rw / 2, cy - rd / 2, 0.004), (rw, 0, 0), (0, rd, 0),
                 self.mats.photo(tile=1.0, rough=0.95, spec=0.1) if r.random() < 0.6 else self.mats.texture(),
                 "floor", tile_uv=False)

    def decorate_wall(self, wname, o, u):
        r = self.rng
        o, u = Vector(o), Vector(u)
        n = Vector((0, 0, 1)).cross(u.normalized())  # into the room for all three walls
        L = u.length
        for _ in range(int(r.integers(0, 3))):
            kind = "window" if r.random() < 0.45 else "picture"
            w = r.uniform(0.4, 1.6) if kind == "window" else r.uniform(0.3, 1.2)
            h = r.uniform(0.6, 1.6) if kind == "window" else w * r.uniform(0.6, 1.4)
            t = r.uniform(0.1, 0.9) * max(L - w, 0.1)
            z = r.uniform(0.7, max(0.8, self.H - h - 0.2)) if kind == "window" else r.uniform(1.0, max(1.1, self.H - h - 0.1))
            base = o + u.normalized() * t + Vector((0, 0, z))
            if kind == "window":
                quad("window", base + n * 0.01, u.normalized() * w, Vector((0, 0, h)),
                     self.mats.photo(tile=1.0, emit=r.uniform(2.0, 6.0)), "window", tile_uv=False)
                bpy.ops.object.light_add(type="AREA")
                lt = bpy.context.object
                lt.data.shape = "RECTANGLE"
                lt.data.size, lt.data.size_y = w, h
                lt.data.energy = r.uniform(50, 400) * w * h
                c = base + u.normalized() * (w / 2) + Vector((0, 0, h / 2)) + n * 0.05
                lt.matrix_world = Matrix.Translation(c) @ n.to_track_quat("-Z", "Z").to_matrix().to_4x4()
            else:
                frame = material("frame", color=tuple(srgb_to_linear(rgb_from_hsv(r.random(), r.uniform(0, 0.5),
                                                                                  r.uniform(0.05, 0.9)))),
                                 rough=r.uniform(0.2, 0.7))
                m = r.uniform(0.02, 0.08)
                quad("frame", base - u.normalized() * m - Vector((0, 0, m)) + n * 0.01, u.normalized() * (w + 2 * m),
                     Vector((0, 0, h + 2 * m)), frame, "wall")
                quad("picture", base + n * 0.02, u.normalized() * w, Vector((0, 0, h)),
                     self.mats.photo(tile=1.0, rough=r.uniform(0.1, 0.6)), "wall", tile_uv=False)

    # -- furniture
    def add_model(self, m, yaw, x, y, z, kind, tag):
        parts = import_model(m, self.assets.cache)
        M = place(parts, yaw, x, y, z, kind, tag)
        fp = footprint(m, yaw, x, y)
        self.models.append((m, fp, parts, M))
        return parts, M

    def inside(self, fp):
        return fp[0] > self.x0 + 0.02 and fp[2] < self.x1 - 0.02 and fp[3] < self.y1 - 0.01 and fp[1] > self.y0 + 0.3

    def try_place(self, m, yaw_choices, region, kind, tag, tries=12, against_wall=False):
        r = self.rng
        for _ in range(tries):
            yaw = float(r.choice(yaw_choices)) + r.normal(0, 0.08)
            if against_wall:
                d = m["size_cm"][1] / 200
                x, y, yaw = r.uniform(self.x0 + 0.4, self.x1 - 0.4), self.y1 - d - 0.02, 0.0
            else:
                x, y = r.uniform(*region[0]), r.uniform(*region[1])
            fp = footprint(m, yaw, x, y)
            if self.layout != "open" and not self.inside(fp):
                continue
            if any(overlaps(fp, o[1]) for o in self.models):
                continue
            z = m["elevation_cm"] / 100 if m["elevation_cm"] > 0 else 0.0
            return self.add_model(m, yaw, x, y, z, kind, tag)
        return None

    def build_furniture(self):
        r = self.rng
        a = self.assets
        self.target = None
        if self.target_model is not None:
            m = self.target_model
            yaw = 0.0 if self.against else float(r.normal(0, 0.6))
            y = 0.0
            z = m["elevation_cm"] / 100 if m["elevation_cm"] > 0 else 0.0
            parts, M = self.add_model(m, yaw, 0.0, y, z, "target", "target")
            self.target = dict(model=m, parts=parts, matrix=M)
            # small items on top of the target (occluding part of it, as on a real table or shelf)
            if m["drop_on_top_cm"] and a.small and r.random() < 0.5:
                top = m["drop_on_top_cm"] / 100 + z
                for _ in range(int(r.integers(1, 4))):
                    s = a.small[int(r.integers(len(a.small)))]
                    hw, hd = m["size_cm"][0] / 200, m["size_cm"][1] / 200
                    sx, sy = r.uniform(-0.7, 0.7) * hw, r.uniform(-0.7, 0.7) * hd
                    c, sn = math.cos(yaw), math.sin(yaw)
                    parts_s = import_model(s, a.cache)
                    place(parts_s, float(r.uniform(0, 2 * math.pi)), c * sx - sn * sy, y + sn * sx + c * sy, top,
                          "clutter", "on_top")
        # other furniture around, behind and sometimes in front of the target
        n = int(r.integers(2, 7)) if not self.room_view else int(r.integers(4, 10))
        for i in range(n):
            m = a.clutter[int(r.integers(len(a.clutter)))]
            if m["elevation_cm"] > 0 and "back" in self.walls:
                self.try_place(m, [0.0], None, "clutter", f"c{i}", against_wall=True)
                continue
            if m["elevation_cm"] > 0:
                continue
            u = r.random()
            if u < 0.2 and not self.room_view:  # in front: partial occlusion
                region = ((-1.0, 1.0), (-1.8, -0.6))
            elif u < 0.6:  # beside
                region = ((-2.5, 2.5), (-1.0, 0.8))
            else:  # behind / along the back
                region = ((-3.0, 3.0), (0.3, 2.5))
            self.try_place(m, [0.0, math.pi / 2, -math.pi / 2, math.pi, r.uniform(0, 2 * math.pi)], region,
                           "clutter", f"c{i}", against_wall=("back" in self.walls and r.random() < 0.4))

    # -- light
    def build_lights(self):
        r = self.rng
        sc = bpy.context.scene
        world = bpy.data.worlds.new("world")
        sc.world = world
        world.use_nodes = True
        bg = world.node_tree.nodes["Background"]
        sky = srgb_to_linear(rgb_from_hsv(r.uniform(0.52, 0.66), r.uniform(0.05, 0.5), r.uniform(0.6, 1.0)))
        bg.inputs["Color"].default_value = (*sky, 1)
        bg.inputs["Strength"].default_value = r.uniform(0.3, 2.0)
        if r.random() < 0.75:
            bpy.ops.object.light_add(type="SUN")
            sun = bpy.context.object
            sun.data.energy = r.uniform(1.0, 6.0)
            sun.data.angle = math.radians(r.uniform(0.5, 12.0))
            warm = r.uniform(0.0, 0.12)
            sun.data.color = (1.0, 1.0 - warm * 0.5, 1.0 - warm)
            elev, az = r.uniform(20, 75), r.uniform(0, 360)
            d = Vector((math.cos(math.radians(elev)) * math.cos(math.radians(az)),
                        math.cos(math.radians(elev)) * math.sin(math.radians(az)), math.sin(math.radians(elev))))
            sun.matrix_world = (-d).to_track_quat("-Z", "Y").to_matrix().to_4x4()
        for _ in range(int(r.integers(0, 3))):
            bpy.ops.object.light_add(type="AREA")
            lt = bpy.context.object
            lt.data.size = r.uniform(0.3, 1.5)
            lt.data.energy = r.uniform(50, 500)
            lt.location = (r.uniform(self.x0, self.x1), r.uniform(self.y0 + 1, self.y1 - 0.2), self.H - 0.05)
        for _ in range(int(r.integers(0, 3))):
            bpy.ops.object.light_add(type="POINT")
            lt = bpy.context.object
            lt.data.energy = r.uniform(20, 200)
            lt.data.shadow_soft_size = r.uniform(0.02, 0.3)
            lt.data.color = (1.0, r.uniform(0.75, 0.95), r.uniform(0.5, 0.8))
            lt.location = (r.uniform(-2.5, 2.5), r.uniform(-2.5, self.y1 - 0.2), r.uniform(0.6, self.H - 0.2))
        # glossier or rougher furniture than its MTL says, so materials vary
        for mat in bpy.data.materials:
            if mat.use_nodes and "Principled BSDF" in mat.node_tree.nodes and mat.name not in ("paint", "photo"):
                p = mat.node_tree.nodes["Principled BSDF"]
                p.inputs["Roughness"].default_value = float(np.clip(p.inputs["Roughness"].default_value
                                                                    + r.normal(0, 0.15), 0.05, 1.0))

    # -- labels
    def build_bvh(self):
        verts, tris, owner = [], [], []
        self.owner_kinds = []
        off = 0
        for k, ob in enumerate(o for o in bpy.data.objects if o.type == "MESH"):
            me = ob.data
            me.calc_loop_triangles()
            v = _verts(ob)
            t = np.empty(len(me.loop_triangles) * 3, np.int32)
            me.loop_triangles.foreach_get("vertices", t)
            t = t.reshape(-1, 3)
            verts.append(v)
            tris.append(t + off)
            owner.append(np.full(len(t), k, np.int32))
            self.owner_kinds.append(ob.get("kind", "other"))
            off += len(v)
        V = np.concatenate(verts)
        T = np.concatenate(tris)
        self.tri_owner = np.concatenate(owner)
        kinds = np.array(self.owner_kinds)
        self.tri_target = kinds[self.tri_owner] == "target"
        self.tri_furniture = np.isin(kinds[self.tri_owner], ["target", "clutter"])
        self.bvh = BVHTree.FromPolygons(V.tolist(), T.tolist(), all_triangles=True, epsilon=0.0)
        if self.target is not None:
            tv = np.concatenate([_verts(o) for o in self.target["parts"]])
            self.bvh_target = BVHTree.FromPolygons(V.tolist(), T[self.tri_target].tolist(), all_triangles=True,
                                                   epsilon=0.0)
            self.target_verts = tv
            self.target_lo, self.target_hi = tv.min(0), tv.max(0)
            self.enclosed = self.enclosure_grid()

    def enclosure_grid(self, n=ENCLOSURE_CELLS):
        """(n, n, n) bools over the target's box: is the cell centre enclosed by the target (the hollow of a
        bottle, the inside of a closed cabinet)? Enclosed = at least ENCLOSURE_VOTES of the 14 rays (6 axes,
        8 diagonals) from it hit the target; the open air between a chair's legs lets most rays out."""
        lo, hi = self.target_lo, self.target_hi
        ext = np.maximum(hi - lo, 1e-6)
        diag = float(np.linalg.norm(ext)) + 0.01
        dirs = [Vector(v).normalized() for v in
                [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]
                + [(a, b, c) for a in (1, -1) for b in (1, -1) for c in (1, -1)]]
        grid = np.zeros((n, n, n), bool)
        bt = self.bvh_target
        for i in range(n):
            for j in range(n):
                for k in range(n):
                    c = Vector(lo + ext * (np.array([i, j, k]) + 0.5) / n)
                    hits = 0
                    for m, d in enumerate(dirs):
                        if bt.ray_cast(c, d, diag)[0] is not None:
                            hits += 1
                        elif m + 1 - hits > len(dirs) - ENCLOSURE_VOTES:
                            break   # too many escaped already
                    grid[i, j, k] = hits >= ENCLOSURE_VOTES
        return grid

    def is_enclosed(self, p):
        lo, hi = self.target_lo, self.target_hi
        n = self.enclosed.shape[0]
        idx = np.floor((np.array(p) - lo) / np.maximum(hi - lo, 1e-6) * n).astype(int)
        if (idx < 0).any() or (idx >= n).any():
            return False
        return bool(self.enclosed[tuple(idx)])

    def leave_target(self, hit, d, dist, diag):
        """Distance along the ray (from the camera) where it leaves the target for good: the next target
        surface after the first hit, carried on through every gap that the target encloses (a bottle's
        hollow, a cabinet's inside) but not through open air (between a chair's legs)."""
        bt = self.bvh_target
        exit_t = None
        p, t = hit + d * 1e-3, dist + 1e-3
        for _ in range(BACK_MAX_GAPS + 1):
            h2, _, _, d2 = bt.ray_cast(p, d, diag + 0.01)
            if h2 is None:
                break
            exit_t = t + d2                        # leaves a part of the target here
            p3, t3 = h2 + d * 1e-3, exit_t + 1e-3
            h3, _, _, d3 = bt.ray_cast(p3, d, diag + 0.01)
            if h3 is None or not self.is_enclosed(p3 + d * (d3 / 2)):
                break                              # nothing more, or open air before the next part
            p, t = h3 + d * 1e-3, t3 + d3 + 1e-3  # through the enclosed gap into the next part
        return exit_t

    def cast(self, cam, size, fov):
        """Labels at the pixel centres of the camera."""
        Mw = cam.matrix_world
        R = Mw.to_3x3()
        o = Mw.translation
        t = math.tan(math.radians(fov) / 2)
        front = np.full((size, size), MAX_DEPTH, np.float32)
        back = front.copy()
        mask = np.zeros((size, size), bool)
        fg = np.zeros((size, size), bool)
        normal = np.zeros((size, size, 3), np.int8)
        Rt = R.transposed()
        bvh, tt, tf = self.bvh, self.tri_target, self.tri_furniture
        bt = getattr(self, "bvh_target", None)
        diag = float(np.linalg.norm(self.target_hi - self.target_lo)) if self.target is not None else 0
        for i in range(size):
            yc = (1 - 2 * (i + 0.5) / size) * t
            for j in range(size):
                xc = (2 * (j + 0.5) / size - 1) * t
                dc = Vector((xc, yc, -1.0))
                inv = 1.0 / dc.length
                d = (R @ dc) * inv
                hit, n, idx, dist = bvh.ray_cast(o, d, 1000.0)
                if hit is None:
                    continue
                z = dist * inv
                front[i, j] = min(z, MAX_DEPTH)
                back[i, j] = front[i, j]
                nc = Rt @ n
                if nc.dot(dc) > 0:
                    nc = -nc
                normal[i, j] = (round(nc.x * 127), round(nc.y * 127), round(nc.z * 127))
                fg[i, j] = tf[idx]
                if tt[idx]:
                    mask[i, j] = True
                    # where the ray leaves the target (through enclosed hollows: leave_target)
                    t_exit = self.leave_target(hit, d, dist, diag)
                    if t_exit is not None:
                        back[i, j] = min(t_exit * inv, MAX_DEPTH)
        return front, back, mask, fg, normal

    # -- camera
    def camera(self, view):
        r = self.rng
        sc = bpy.context.scene
        cam_data = bpy.data.cameras.new(f"cam{view}")
        cam_data.sensor_fit = "VERTICAL"
        fov = float(r.uniform(45, 75))
        cam_data.angle_y = math.radians(fov)
        cam_data.clip_start, cam_data.clip_end = 0.02, 200
        cam = bpy.data.objects.new(f"cam{view}", cam_data)
        sc.collection.objects.link(cam)
        sc.camera = cam
        hcam = float(r.uniform(0.8, 1.8))
        if self.target is not None:
            lo, hi = self.target_lo, self.target_hi
            c = (lo + hi) / 2
            ext = hi - lo
            fill = r.uniform(0.10, 0.70)
            s = math.sqrt(max(ext[0], ext[1]) * ext[2])
            dist = s / (2 * math.tan(math.radians(fov) / 2) * math.sqrt(fill))
            dist = max(dist, float(np.linalg.norm(ext)) * 0.55 + 0.1)
            az = float(np.clip(r.normal(0, 0.6), -1.4, 1.4)) + self.target["matrix"].to_euler().z
            cut = r.random() < 0.15
            jit = ext * (r.uniform(-0.5, 0.5, 3) if cut else r.uniform(-0.12, 0.12, 3))
            look = Vector(c + jit)
        else:
            dist = r.uniform(2.0, 4.5)
            az = float(r.uniform(-0.7, 0.7))
            look = Vector((r.uniform(self.x0 + 0.5, self.x1 - 0.5), self.y1, r.uniform(0.3, 1.4)))
        # phones look down at small things, but rarely more than ~55 degrees: lower the camera if needed
        hcam = min(hcam, look.z + dist * math.sin(math.radians(55)))
        dz = hcam - look.z
        horiz = math.sqrt(max(dist ** 2 - dz ** 2, 0.25))
        pos = look + Vector((math.sin(az) * horiz, -math.cos(az) * horiz, 0))
        pos.z = hcam
        if self.layout != "open":  # stay inside the room
            pos.x = min(max(pos.x, self.x0 + 0.15), self.x1 - 0.15) if "left" in self.walls or "right" in self.walls else pos.x
            pos.y = min(pos.y, self.y1 - 0.3)
        rot = (look - pos).to_track_quat("-Z", "Y")
        roll = Matrix.Rotation(math.radians(r.normal(0, 3.0)), 4, "Z")
        cam.matrix_world = Matrix.Translation(pos) @ rot.to_matrix().to_4x4() @ roll
        return cam, fov


# ----------------------------------------------------------------------------- camera model (post)
def blur(img, sigma):
    if sigma <= 0.05:
        return img
    k = max(1, int(3 * sigma))
    x = np.arange(-k, k + 1)
    w = np.exp(-x ** 2 / (2 * sigma ** 2))
    w /= w.sum()
    pad = np.pad(img, ((k, k), (0, 0), (0, 0)), mode="edge")
    img = sum(w[i] * pad[i:i + img.shape[0]] for i in range(2 * k + 1))
    pad = np.pad(img, ((0, 0), (k, k), (0, 0)), mode="edge")
    return sum(w[i] * pad[:, i:i + img.shape[1]] for i in range(2 * k + 1))


def develop(lin, rng):
    """Linear HDR film (H,W,3) -> uint8 sRGB photo, with a phone camera's imperfections."""
    from PIL import Image
    import io

    lin = np.nan_to_num(np.maximum(lin, 0.0), posinf=0.0)
    lum = 0.2126 * lin[..., 0] + 0.7152 * lin[..., 1] + 0.0722 * lin[..., 2]
    key = math.exp(float(np.mean(np.log(lum + 1e-4))))
    ev = rng.normal(0, 0.45)
    x = lin * (0.18 / max(key, 1e-4)) * 2 ** ev
    wb = np.exp(rng.normal(0, 0.06, 3))
    x = x * (wb / wb.mean())
    if rng.random() < 0.5:
        x = blur(x, rng.uniform(0.3, 1.0))
    H, W = x.shape[:2]
    yy, xx = np.mgrid[0:H, 0:W]
    r2 = ((xx + 0.5) / W - 0.5) ** 2 + ((yy + 0.5) / H - 0.5) ** 2
    x = x * (1 - rng.uniform(0, 0.6) * r2 * 2)[..., None]
    a, b = rng.uniform(0, 0.004), rng.uniform(0, 2e-5)
    x = x + rng.standard_normal(x.shape) * np.sqrt(a * np.clip(x, 0, 4) + b)
    # tone curve: extended Reinhard (white point 2.5..6) then the sRGB transfer function
    wp = rng.uniform(2.5, 6.0)
    x = np.clip(x, 0, None)
    x = x * (1 + x / wp ** 2) / (1 + x)
    x = np.clip(x, 0, 1)
    s = np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)
    out = np.clip(np.round(s * 255), 0, 255).astype(np.uint8)
    if rng.random() < 0.7:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, "JPEG", quality=int(rng.integers(60, 96)))
        out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return out


def render_film(path, size):
    bpy.context.scene.render.filepath = path
    bpy.ops.render.render(write_still=True)
    img = bpy.data.images.load(path)
    px = np.empty(size * size * 4, np.float32)
    img.pixels.foreach_get(px)
    bpy.data.images.remove(img)
    os.remove(path)
    return px.reshape(size, size, 4)[::-1, :, :3].copy()


# ----------------------------------------------------------------------------- main
def render_scene(seed, split, assets, a, tmpdir, log):
    t0 = time.time()
    scn = Scene(seed, split, assets, a.size, a.samples, a.threads)
    scn.build_bvh()
    t_build = time.time() - t0
    views = []
    for v in range(a.views):
        for attempt in range(8):
            cam, fov = scn.camera(v)
            f, b, m, fg, n = scn.cast(cam, a.size, fov)
            fill = m.mean()
            # the target must be seen (2-85 % of the frame), the camera not inside furniture or a wall
            ok = (scn.target is None or 0.02 <= fill <= 0.85) and f.min() > 0.1
            if ok or attempt == 7:  # the last draw is kept whatever it shows: the record says so (fill)
                break
            bpy.data.objects.remove(cam)
        t1 = time.time()
        film = render_film(os.path.join(tmpdir, f"film_{seed}_{v}.exr"), a.size)
        t_render = time.time() - t1
        rgb = develop(film, scn.rng)
        Mc = np.array(cam.matrix_world, np.float64)
        rec = dict(rgb=rgb, front=f, back=b, mask=m, fg=fg, normal=n, room=scn.target is None, fov=fov,
                   seeds=seed * 1000 + v, scene=seed, cam_to_world=Mc.astype(np.float32), fill=float(fill),
                   back_rule=BACK_RULE,
                   layout=str(scn.layout))
        if scn.target is not None:
            tm = scn.target["model"]
            rng_v = np.random.default_rng([seed, v, 7])
            tv = scn.target_verts
            sel = rng_v.choice(len(tv), size=min(N_TARGET_VERTS, len(tv)), replace=False)
            pts = np.zeros((N_TARGET_VERTS, 3), np.float32)
            pts[:len(sel)] = tv[sel]
            rec.update(target_id=tm["id"], target_size=np.array(tm["size_cm"], np.float32) / 100,
                       target_lo=scn.target_lo.astype(np.float32), target_hi=scn.target_hi.astype(np.float32),
                       target_to_world=np.array(scn.target["matrix"], np.float32), target_verts=pts,
                       target_nverts=len(sel))
        else:
            rec.update(target_id="", target_size=np.zeros(3, np.float32), target_lo=np.zeros(3, np.float32),
                       target_hi=np.zeros(3, np.float32), target_to_world=np.eye(4, dtype=np.float32),
                       target_verts=np.zeros((N_TARGET_VERTS, 3), np.float32), target_nverts=0)
        views.append(rec)
        bpy.data.objects.remove(cam)
        log(f"scene {seed} view {v}: {scn.layout} target {rec['target_id'] or '-'} fill {fill:.2f} "
            f"render {t_render:.1f}s")
    log(f"scene {seed}: {len(scn.models)} models placed, build {t_build:.1f}s total {time.time() - t0:.1f}s")
    return views


class _Pose:
    """What Scene.cast needs of a camera: its matrix_world."""

    def __init__(self, m):
        self.matrix_world = Matrix([list(map(float, row)) for row in m])


def relabel(path, split, assets, threads, log, tolerance=RELABEL_TOLERANCE):
    """Recomputes the back depth of a shard's views under BACK_RULE from the same scenes and the stored
    cameras (no rendering). The stored camera matrix is float32, so a ray on an edge may now fall the
    other side of it: the recomputed mask and front depth must agree with the stored ones on all but
    `tolerance` of each view's pixels (else the shard is left as it is and False returned); the stored
    front and mask are kept, and the new back is taken where the two masks agree (elsewhere the stored
    back). Rewrites the shard in place, atomically."""
    z = dict(np.load(path))
    if "back_rule" in z and (z["back_rule"] == BACK_RULE).all():
        log(f"{path}: already back rule {BACK_RULE}")
        return True
    size = z["rgb"].shape[1]
    back = z["back"].copy()
    worst = 0.0
    for seed in dict.fromkeys(int(s) for s in z["scene"]):
        scn = Scene(seed, split, assets, size, 1, threads)
        scn.build_bvh()
        for v in np.nonzero(z["scene"] == seed)[0]:
            f, b, m, _, _ = scn.cast(_Pose(z["cam_to_world"][v]), size, float(z["fov"][v]))
            m0, f0 = z["mask"][v], z["front"][v]
            off = float(((m != m0) | (np.abs(f - f0) > 1e-3 * np.maximum(f0, 1))).mean())
            worst = max(worst, off)
            if off > tolerance:
                log(f"{path} view {v}: the rebuilt scene differs from the stored one on {off:.2%} of the pixels; "
                    "shard not relabelled")
                return False
            keep = m & m0
            back[v] = np.where(keep, np.maximum(b, f0), np.where(m0, z["back"][v], f0))
    m = z["mask"].astype(bool)
    changed = float((np.abs(back - z["back"])[m] > 1e-3).mean()) if m.any() else 0.0
    z["back"] = back
    z["back_rule"] = np.full(len(back), BACK_RULE, np.int64)
    tmp = path + ".tmp.npz"
    np.savez(tmp, **z)
    os.replace(tmp, path)
    log(f"relabelled {path}: back rule {BACK_RULE}, {changed:.1%} of target pixels changed "
        f"(rebuilt scene off the stored one on at most {worst:.3%} of a view's pixels)")
    return True


def main():
    faulthandler.enable()  # a native crash in Blender prints the Python stack
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--split", choices=list(SPLIT_SALT), required=True)
    ap.add_argument("--scenes", default="", help="comma-separated scene seeds")
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=A.default_cache())
    ap.add_argument("--relabel", action="store_true",
                    help="--out names existing shards (comma-separated): recompute their back depth, render nothing")
    a = ap.parse_args(argv)
    A.extract_catalogs(a.cache)
    assets = Assets(a.cache, a.split)
    log = lambda s: print("[photoreal] " + s, flush=True)  # noqa: E731
    if a.relabel:
        ok = [relabel(path, a.split, assets, a.threads, log) for path in a.out.split(",")]
        sys.exit(0 if all(ok) else 1)
    recs = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in [int(x) for x in a.scenes.split(",")]:
            recs += render_scene(s, a.split, assets, a, tmp, log)
    out = {}
    for k in recs[0]:
        vals = [r[k] for r in recs]
        out[k] = np.stack(vals) if isinstance(vals[0], np.ndarray) else np.asarray(vals)
    tmp = a.out + ".tmp.npz"
    np.savez(tmp, **out)
    os.replace(tmp, a.out)
    log(f"wrote {a.out}: {len(recs)} views")


if __name__ == "__main__":
    main()
