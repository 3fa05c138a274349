// The functions of web/src/duet_web.js, as C sees them (one declaration
// each; Emscripten resolves them against the JS library at link time).
#pragma once

#include <cstddef>

extern "C" {
void duet_web_js_release(int id);
int duet_web_js_dup(int id);
int duet_web_js_live_values();
int duet_web_js_from_string(const char* ptr, std::size_t len);
int duet_web_js_from_number(double x);
int duet_web_js_from_bool(int b);
int duet_web_js_from_bytes(const void* ptr, std::size_t len);
int duet_web_js_global(const char* ptr, std::size_t len);
int duet_web_js_get(int id, const char* ptr, std::size_t len);
void duet_web_js_set(int id, const char* ptr, std::size_t len, int value);
int duet_web_js_call(int id, const char* ptr, std::size_t len, int args);
int duet_web_js_take_last_error();
int duet_web_js_failed();
int duet_web_js_new_array();
void duet_web_js_push(int array, int value);
int duet_web_js_type_of(int id);
double duet_web_js_to_number(int id);
int duet_web_js_truthy(int id);
int duet_web_js_string_length(int id);
void duet_web_js_string_copy(char* ptr, int n);
int duet_web_js_bytes_length(int id);
void duet_web_js_bytes_copy(void* ptr);
int duet_web_js_error_message(int id);
int duet_web_js_error_name(int id);
int duet_web_js_new_error(const char* name, std::size_t name_len, const char* msg, std::size_t msg_len);
void duet_web_js_then(int id, unsigned token);
int duet_web_js_deferred();
void duet_web_js_settle(int deferred, int ok, int value);
void duet_web_js_schedule_tick(unsigned driver, int kind);
int duet_web_js_zero_delay_label(int kind);
int duet_web_js_set_timer(unsigned driver, double ms);
void duet_web_js_clear_timer(int id);
void duet_web_js_keepalive(int push);
int duet_web_js_fetch(const char* url, std::size_t url_len, const char* method, std::size_t method_len,
                      const char* headers, std::size_t headers_len, const void* body, std::size_t body_len,
                      int has_body);
int duet_web_js_ws_open(const char* url, std::size_t url_len, const char* protocols, std::size_t protocols_len,
                        unsigned token);
}
