// The SDL2 window: shows the newest inferred frame with its detections and the panel, handles the
// keys, and never blocks on inference (events are polled every few milliseconds).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <SDL2/SDL.h>

#include "detect_out.h"
#include "log.h"
#include "pipe.h"

struct window {
	struct view_pipe *pp;
	SDL_Window *win;
	SDL_Renderer *ren;
	SDL_Texture *tex;
	uint32_t tex_w, tex_h;
	struct view_result *cur;
	bool help, fullscreen;
	uint32_t n_shots;
};

static int ensure_window(struct window *w, uint32_t fw, uint32_t fh)
{
	if (!w->win) {
		w->win = SDL_CreateWindow("vkyolo view", SDL_WINDOWPOS_UNDEFINED, SDL_WINDOWPOS_UNDEFINED, (int)fw, (int)fh,
		                          SDL_WINDOW_RESIZABLE | (w->fullscreen ? SDL_WINDOW_FULLSCREEN_DESKTOP : 0));
		if (!w->win) {
			LOGE("viewer: cannot open a window: %s (no display? try --headless)", SDL_GetError());
			return -ENODEV;
		}
		w->ren = SDL_CreateRenderer(w->win, -1, 0);
		if (!w->ren)
			w->ren = SDL_CreateRenderer(w->win, -1, SDL_RENDERER_SOFTWARE);
		if (!w->ren) {
			LOGE("viewer: cannot create a renderer: %s", SDL_GetError());
			return -ENODEV;
		}
		SDL_SetHint(SDL_HINT_RENDER_SCALE_QUALITY, "linear");
	}
	if (w->tex && w->tex_w == fw && w->tex_h == fh)
		return 0;
	if (w->tex)
		SDL_DestroyTexture(w->tex);
	w->tex = SDL_CreateTexture(w->ren, SDL_PIXELFORMAT_RGB24, SDL_TEXTUREACCESS_STREAMING, (int)fw, (int)fh);
	if (!w->tex) {
		LOGE("viewer: cannot create a %ux%u texture: %s", fw, fh, SDL_GetError());
		return -ENOMEM;
	}
	w->tex_w = fw, w->tex_h = fh;
	// Letterboxed scaling: a resized window keeps the video's aspect ratio.
	SDL_RenderSetLogicalSize(w->ren, (int)fw, (int)fh);
	return 0;
}

// Reads the whole window back (what is about to be presented) into a PNG.
static int read_back(struct window *w, const char *path)
{
	int ow, oh, ret;
	SDL_GetRendererOutputSize(w->ren, &ow, &oh);
	struct nn_image *img = NULL;
	if ((ret = nn_image_create((uint32_t)ow, (uint32_t)oh, 3, &img)))
		return ret;
	if (SDL_RenderReadPixels(w->ren, &(SDL_Rect){ 0, 0, ow, oh }, SDL_PIXELFORMAT_RGB24, img->data, ow * 3)) {
		LOGE("viewer: cannot read the window back: %s", SDL_GetError());
		ret = -EIO;
	} else {
		ret = nn_image_save(path, img, 95);
		if (!ret)
			LOGI("viewer: saved %s", path);
	}
	nn_image_destroy(&img);
	return ret;
}

// Draws the current frame (detections, panel, help) and presents it; optionally reads it back.
static int present(struct window *w, bool is_new, const char *shot)
{
	struct view_pipe *pp = w->pp;
	struct nn_image *img = NULL;
	int ret = view_pipe_render(pp, w->cur, &img);
	if (!ret && is_new)
		ret = view_pipe_save(pp, w->cur, img);
	if (!ret)
		ret = ensure_window(w, img->w, img->h);
	if (ret)
		goto done;
	view_overlay_panel(img, pp->font, pp, pp->p->src->name);
	if (w->help)
		view_overlay_help(img, pp->font);
	SDL_UpdateTexture(w->tex, NULL, img->data, (int)img->w * 3);
	SDL_SetRenderDrawColor(w->ren, 0, 0, 0, 255);
	SDL_RenderClear(w->ren);
	SDL_RenderCopy(w->ren, w->tex, NULL, NULL);
	if (shot) {
		// Read the whole output, not the letterboxed viewport: drop the logical size meanwhile.
		SDL_RenderSetLogicalSize(w->ren, 0, 0);
		ret = read_back(w, shot);
		SDL_RenderSetLogicalSize(w->ren, (int)w->tex_w, (int)w->tex_h);
	}
	SDL_RenderPresent(w->ren);
	if (is_new)
		view_pipe_count(pp, w->cur);
done:
	nn_image_destroy(&img);
	return ret;
}

static void screenshot(struct window *w)
{
	const char *dir = w->pp->p->run_dir ? w->pp->p->run_dir : ".";
	char path[4096];
	if (nn_mkdir_p(dir))
		return;
	for (;;) {
		snprintf(path, sizeof(path), "%s/screenshot_%03u.png", dir, w->n_shots++);
		FILE *f = fopen(path, "rb");
		if (!f)
			break;
		fclose(f);
	}
	present(w, false, path);
}

static void handle_key(struct window *w, SDL_Keycode k, bool *quit, bool *redraw)
{
	struct view_pipe *pp = w->pp;
	float conf = atomic_load(&pp->conf);
	switch (k) {
	case SDLK_q:
	case SDLK_ESCAPE:
		*quit = true;
		break;
	case SDLK_SPACE:
		atomic_store(&pp->paused, !atomic_load(&pp->paused));
		*redraw = true;
		break;
	case SDLK_s:
		if (w->cur)
			screenshot(w);
		break;
	case SDLK_PLUS:
	case SDLK_EQUALS:
	case SDLK_KP_PLUS:
		atomic_store(&pp->conf, conf + 0.05f > 0.95f ? 0.95f : conf + 0.05f);
		*redraw = true;
		break;
	case SDLK_MINUS:
	case SDLK_KP_MINUS:
		atomic_store(&pp->conf, conf - 0.05f < 0.01f ? 0.01f : conf - 0.05f);
		*redraw = true;
		break;
	case SDLK_f:
		w->fullscreen = !w->fullscreen;
		if (w->win)
			SDL_SetWindowFullscreen(w->win, w->fullscreen ? SDL_WINDOW_FULLSCREEN_DESKTOP : 0);
		*redraw = true;
		break;
	case SDLK_h:
		w->help = !w->help;
		*redraw = true;
		break;
	default:
		break;
	}
}

int view_window_open(void)
{
	if (SDL_Init(SDL_INIT_VIDEO)) {
		LOGE("viewer: no display available (%s); run with --headless", SDL_GetError());
		return -ENODEV;
	}
	// SDL falls back to an invisible "offscreen" driver when there is no display; say so instead,
	// unless that driver was asked for (SDL_VIDEODRIVER).
	const char *drv = SDL_GetCurrentVideoDriver(), *asked = getenv("SDL_VIDEODRIVER");
	if (drv && (!strcmp(drv, "offscreen") || !strcmp(drv, "dummy")) && !(asked && *asked)) {
		LOGE("viewer: no display available (DISPLAY and WAYLAND_DISPLAY are not set); run with --headless");
		SDL_Quit();
		return -ENODEV;
	}
	return 0;
}

int view_window_run(struct view_pipe *pp)
{
	struct window w = { .pp = pp, .fullscreen = pp->p->fullscreen };
	bool quit = false, eos = false, keys_sent = !pp->p->keys, io_turn = true;
	int ret = 0;
	double t_turn = view_now_ms();
	while (!quit && !ret) {
		bool redraw = false, is_new = false;
		SDL_Event ev;
		// Responsiveness: the longest gap between two turns of this loop, leaving out turns that
		// created the window or wrote files (screenshots, --save-frames/--save-video).
		double now = view_now_ms();
		if (!io_turn && w.win && now - t_turn > pp->ui_gap_max)
			pp->ui_gap_max = now - t_turn;
		t_turn = now;
		io_turn = !w.win;
		if (!keys_sent && pp->displayed) {
			// Scripted key presses (--keys), queued like real ones once the first frame is up.
			for (const char *k = pp->p->keys; *k; k++) {
				SDL_Event e = { .type = SDL_KEYDOWN };
				e.key.keysym.sym = *k == 'E' ? SDLK_ESCAPE : (SDL_Keycode)(unsigned char)*k;
				SDL_PushEvent(&e);
			}
			keys_sent = true;
		}
		if (SDL_WaitEventTimeout(&ev, 4)) {
			do {
				if (ev.type == SDL_QUIT)
					quit = true;
				else if (ev.type == SDL_KEYDOWN)
					handle_key(&w, ev.key.keysym.sym, &quit, &redraw), io_turn |= ev.key.keysym.sym == SDLK_s;
				else if (ev.type == SDL_WINDOWEVENT && (ev.window.event == SDL_WINDOWEVENT_EXPOSED ||
				                                         ev.window.event == SDL_WINDOWEVENT_SIZE_CHANGED))
					redraw = true;
			} while (SDL_PollEvent(&ev));
		}
		if (!eos) {
			struct view_result *r = view_pipe_take(pp, 0, &eos);
			if (r && atomic_load(&pp->paused)) {
				view_result_free(r);
			} else if (r) {
				view_result_free(w.cur);
				w.cur = r;
				is_new = redraw = true;
			}
			// A window stays open on the last frame at the end of the stream (until q), unless a
			// frame count was given (scripts, tests) or nothing was ever shown.
			if (eos && (!w.cur || pp->p->max_frames))
				quit = true;
		}
		bool last = pp->p->max_frames && is_new && pp->displayed + 1 >= pp->p->max_frames;
		if (redraw && w.cur) {
			ret = present(&w, is_new, last ? pp->p->screenshot : NULL);
			io_turn |= last || (is_new && (pp->p->save_frames || pp->p->save_video));
		}
		if (pp->p->max_frames && pp->displayed >= pp->p->max_frames)
			quit = true;
	}
	if (!ret && pp->p->screenshot && w.cur && !(pp->p->max_frames && pp->displayed >= pp->p->max_frames))
		ret = present(&w, false, pp->p->screenshot);
	view_result_free(w.cur);
	if (w.tex)
		SDL_DestroyTexture(w.tex);
	if (w.ren)
		SDL_DestroyRenderer(w.ren);
	if (w.win)
		SDL_DestroyWindow(w.win);
	SDL_Quit();
	return ret;
}
