// Every default value of the job payload, in one place.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace snapshotter::job::defaults {

inline constexpr int k_version = 1;
inline constexpr std::array<std::string_view, 2> k_refs = {"refs/heads/*", "refs/tags/*"};
inline constexpr std::string_view k_username = "x-access-token";
// sources[].api_url: the public service of each forge.
inline constexpr std::string_view k_github_api = "https://api.github.com";
inline constexpr std::string_view k_gitlab_api = "https://gitlab.com/api/v4";
inline constexpr std::string_view k_gitea_api = "https://gitea.com/api/v1";
inline constexpr std::string_view k_bitbucket_api = "https://api.bitbucket.org/2.0";
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
// options.shard.count: at most this many shards (merge_reports checks reports against it too).
inline constexpr int k_max_shards = 100'000;
inline constexpr bool k_allow_http = false;
inline constexpr bool k_allow_file = true;
// A shallow upstream is refused: a snapshot of it cannot restore the history it lacks.
inline constexpr bool k_allow_shallow = false;
// auto: the protocol v2 streaming engine where the server speaks v2, else git.
inline constexpr std::string_view k_engine = "auto";
// auto: store Git LFS content when the snapshot's commits hold LFS pointers (docs/lfs.md).
inline constexpr std::string_view k_lfs = "auto";
// pack: check the streamed pack's trailer; index: also run git index-pack on it.
inline constexpr std::string_view k_verify = "pack";
// ssh trusts only known host keys (options.ssh.known_hosts, else /etc/ssh/ssh_known_hosts).
inline constexpr std::string_view k_host_key_policy = "strict";
inline constexpr std::string_view k_snapshot = "latest";
inline constexpr bool k_drill = false;
// prune: every keep_* count defaults to 0 (rule unused), rebase to false.
inline constexpr int k_keep = 0;
inline constexpr int k_max_keep = 1'000'000;
inline constexpr bool k_rebase = false;
// storage.object_lock_retain_days: at most 100 years.
inline constexpr int k_max_lock_days = 36500;
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
// sources[].max_rate_limit_wait_s: the longest wait for a forge's rate limit
// (15 min, GitHub's secondary limits ask for less); at most one day.
inline constexpr int k_max_rate_limit_wait_s = 900;
inline constexpr int k_max_rate_limit_wait_ceiling_s = 86'400;
// A server advertising more refs than this is stopped: 1,000,000 is over 100
// times libgit2's 7,007 refs (96% of them refs/pull/*) and far beyond any
// repository's branches and tags, while the ref list stays in the tens of MB.
inline constexpr int k_max_refs = 1'000'000;
// A pack larger than this stops the repository: 100 GiB is GitHub's hard
// repository size limit, and S3 objects go to 5 TiB, so a legitimate
// repository stays below it while a runaway server is stopped. 0: no limit.
inline constexpr long long k_max_pack_bytes = 100LL << 30;

} // namespace snapshotter::job::defaults
