// Every default value of the job payload, in one place.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace snapshotter::job::defaults {

inline constexpr int k_version = 1;
inline constexpr std::array<std::string_view, 2> k_refs = {"refs/heads/*", "refs/tags/*"};
inline constexpr std::string_view k_username = "x-access-token";
inline constexpr int k_timeout_s = 3600;
inline constexpr int k_deadline_s = 0;
// Network-bound work: 8 connections get within 10% of the floor at 50 ms RTT.
inline constexpr int k_concurrency = 8;
inline constexpr int k_max_per_host = 8;
inline constexpr int k_retries = 3;
inline constexpr int k_full_every = 30;
inline constexpr double k_full_size_ratio = 0.5;
// Fargate Spot gives two minutes between SIGTERM and SIGKILL.
inline constexpr int k_grace_s = 90;
inline constexpr bool k_allow_http = false;
inline constexpr bool k_allow_file = true;
// auto: the protocol v2 streaming engine where the server speaks v2, else git.
inline constexpr std::string_view k_engine = "auto";
// pack: check the streamed pack's trailer; index: also run git index-pack on it.
inline constexpr std::string_view k_verify = "pack";
inline constexpr std::string_view k_snapshot = "latest";
inline constexpr bool k_drill = false;
// gc removes leftovers idle at least this long (24 h): it must exceed the
// longest time one repository's snapshot can take, bundle to manifest.
inline constexpr long long k_gc_min_age_s = 86'400;
// Ages below this (1 h) are refused unless gc.allow_short_age is true (tests).
inline constexpr long long k_gc_min_age_floor_s = 3'600;
inline constexpr bool k_gc_allow_short_age = false;
// cache_dir: $XDG_CACHE_HOME/snapshotter, else $HOME/.cache/snapshotter,
// else /var/cache/snapshotter (see default_cache_dir in job.cpp).
inline constexpr std::size_t k_max_payload_bytes = std::size_t{16} << 20;
inline constexpr std::size_t k_max_repositories = 1'000'000;

} // namespace snapshotter::job::defaults
