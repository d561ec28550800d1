"""The footage of the test set: ffmpeg lavfi sources, each drawn with seeded parameters.

Every function takes a `random.Random` and a unique tag (for the labels of the few sources that
need a small graph of their own) and returns one filter chain, starting at a source, producing
640x360 frames at 25 fps. Some are still and some move a lot (a fast pan, a zoom, a rotation, an
object crossing the frame, noise, cellular automata), so that a detector can be fooled into
finding boundaries where there are none.
"""

WIDTH, HEIGHT, FPS = 640, 360, 25
SIZE = f"size={WIDTH}x{HEIGHT}:rate={FPS}"


def _colour(rng):
    return f"0x{rng.randrange(1 << 24):06x}"


def testsrc(rng, tag):
    return f"testsrc={SIZE},hue=h={rng.randrange(360)}"


def testsrc2(rng, tag):
    return f"testsrc2={SIZE},hue=h={rng.randrange(360)}"


def bars(rng, tag):
    kind = rng.choice(["smptebars", "smptehdbars", "pal75bars"])
    return f"{kind}={SIZE}"


def bars_pan(rng, tag):
    # `scroll` wraps around: a camera panning fast over a wide set, 2 to 13 pixels a frame.
    speed = rng.uniform(0.003, 0.02) * rng.choice([-1, 1])
    kind = rng.choice(["smptebars", "pal75bars"])
    return f"{kind}={SIZE},hue=h={rng.randrange(360)},scroll=h={speed:.4f}"


def whip_pan(rng, tag):
    # A whip pan: 20 to 40 pixels a frame, most of the picture new within a second.
    speed = rng.uniform(0.03, 0.06) * rng.choice([-1, 1])
    return f"testsrc={SIZE},hue=h={rng.randrange(360)},scroll=h={speed:.4f}"


def rgb_rotate(rng, tag):
    turn = rng.uniform(0.2, 0.9) * rng.choice([-1, 1])
    return f"rgbtestsrc={SIZE},rotate=a=t*{turn:.3f}:c={_colour(rng)}"


def mandelbrot(rng, tag):
    # A steady zoom: every frame differs from the previous one all over.
    scale = rng.choice([3.0, 1.0, 0.3, 0.1])
    return f"mandelbrot={SIZE}:maxiter=200:start_scale={scale}:end_pts={rng.randint(60, 200)}"


def gradients(rng, tag):
    colours = ":".join(f"c{i}={_colour(rng)}" for i in range(3))
    speed = rng.uniform(0.01, 0.04)
    return f"gradients={SIZE}:{colours}:nb_colors=3:speed={speed:.3f}:seed={rng.randrange(1 << 30)}"


def noisy_colour(rng, tag):
    strength = rng.randint(10, 40)
    colour, seed = _colour(rng), rng.randrange(1 << 30)
    return f"color=c={colour}:{SIZE},noise=alls={strength}:allf=t+u:all_seed={seed}"


def moving_box(rng, tag):
    # An object crossing the frame fast, 8 to 20 pixels a frame, over a plain background.
    side = rng.randint(60, 140)
    speed = rng.randint(8, 20)
    y = rng.randint(0, HEIGHT - side)
    return (
        f"color=c={_colour(rng)}:{SIZE}[bg{tag}];"
        f"color=c={_colour(rng)}:size={side}x{side}:rate={FPS}[box{tag}];"
        f"[bg{tag}][box{tag}]overlay=x='mod(n*{speed}\\,{WIDTH - side})':y={y}:shortest=1"
    )


def big_object(rng, tag):
    # Something large passing close to the camera: a third of the frame, 15 to 30 pixels a frame.
    side = rng.randint(150, 250)
    speed = rng.randint(15, 30)
    return (
        f"testsrc2={SIZE}[bg{tag}];"
        f"color=c={_colour(rng)}:size={side}x{side}:rate={FPS}[box{tag}];"
        f"[bg{tag}][box{tag}]overlay=x='mod(n*{speed}\\,{WIDTH + side})-{side}'"
        f":y={(HEIGHT - side) // 2}:shortest=1"
    )


def flashes(rng, tag):
    # Photographers' flashes: two frames much brighter, twice, in one shot. Not a boundary.
    first, second = rng.randint(20, 40), rng.randint(50, 70)
    bright = rng.uniform(0.4, 0.7)
    return (
        f"smptehdbars={SIZE},hue=h={rng.randrange(360)},scroll=h=0.003,"
        f"eq=brightness={bright:.2f}:enable='between(n,{first},{first + 1})+"
        f"between(n,{second},{second + 1})'"
    )


def life(rng, tag):
    return (
        f"life={SIZE}:seed={rng.randrange(1 << 30)}:ratio={rng.uniform(0.05, 0.3):.2f}:mold=10"
        f":life_color={_colour(rng)}:death_color={_colour(rng)}:mold_color={_colour(rng)}"
    )


def cellauto(rng, tag):
    rule = rng.choice([18, 30, 90, 110, 150])
    seed, hue = rng.randrange(1 << 30), rng.randrange(360)
    return f"cellauto={SIZE}:rule={rule}:seed={seed},colorize=hue={hue}:saturation=0.6"


def sierpinski(rng, tag):
    kind = rng.choice(["carpet", "triangle"])
    seed, jump = rng.randrange(1 << 30), rng.randint(50, 150)
    return f"sierpinski={SIZE}:seed={seed}:type={kind}:jump={jump}"


# Sources drawn from the same lavfi pattern look alike whatever moves on them: two in a row
# would make a cut that only a change of hue (or nothing at all) shows.
FAMILY = {whip_pan: "testsrc", big_object: "testsrc2", bars_pan: "bars", flashes: "bars"}


def family(source):
    return FAMILY.get(source, source.__name__)


STILL = [testsrc, bars]
MOVING = [
    testsrc2,
    bars_pan,
    whip_pan,
    rgb_rotate,
    mandelbrot,
    gradients,
    noisy_colour,
    moving_box,
    big_object,
    life,
    cellauto,
    sierpinski,
]
ALL = STILL + MOVING
# For the long shots of the motion video only: the flashes fall 20 to 71 frames into a shot,
# which in a short shot could be inside a transition.
STRESS = MOVING + [flashes]
