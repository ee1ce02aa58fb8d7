#include "tcptrail/identity.hpp"

#include <algorithm>
#include <array>
#include <vector>

namespace tcptrail {

namespace {

constexpr std::size_t kContainerIdLength = 64;
constexpr std::size_t kContainerIdPrefixLength = 12;
constexpr std::size_t kMaxPodUidLength = 64;
constexpr std::size_t kMaxUnitNameLength = 255;

bool is_lower_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool is_container_id(std::string_view text) {
  return text.size() == kContainerIdLength && is_lower_hex(text);
}

bool strip_prefix(std::string_view& text, std::string_view prefix) {
  if (!text.starts_with(prefix)) {
    return false;
  }
  text.remove_prefix(prefix.size());
  return true;
}

bool strip_suffix(std::string_view& text, std::string_view suffix) {
  if (!text.ends_with(suffix)) {
    return false;
  }
  text.remove_suffix(suffix.size());
  return true;
}

std::vector<std::string_view> components(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    const std::size_t slash = path.find('/');
    const std::string_view part = path.substr(0, slash);
    if (!part.empty()) {
      parts.push_back(part);
    }
    if (slash == std::string_view::npos) {
      break;
    }
    path.remove_prefix(slash + 1);
  }
  return parts;
}

// "docker-ID.scope", "cri-containerd-ID.scope", "crio-ID.scope", "libpod-ID.scope" (systemd
// driver) and "crio-ID", "libpod-ID" (cgroupfs). The runtimes' monitors ("crio-conmon-ID",
// "libpod-conmon-ID") are not the container.
std::string_view runtime_container_id(std::string_view part) {
  static constexpr std::array<std::string_view, 4> kPrefixes = {"docker-", "cri-containerd-",
                                                                "crio-", "libpod-"};
  for (const std::string_view prefix : kPrefixes) {
    std::string_view rest = part;
    if (strip_prefix(rest, prefix)) {
      strip_suffix(rest, ".scope");
      return is_container_id(rest) ? rest : std::string_view{};
    }
  }
  return {};
}

bool is_pod_uid(std::string_view text) {
  return !text.empty() && text.size() <= kMaxPodUidLength &&
         std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-' || c == '_';
         });
}

// "kubepods-besteffort-pod<uid>.slice", "kubepods-pod<uid>.slice" (systemd driver, "-" in the
// uid escaped as "_") and "pod<uid>" under "kubepods" (cgroupfs).
std::string pod_uid_of(std::string_view part, bool under_kubepods) {
  std::string_view uid = part;
  if (strip_prefix(uid, "kubepods-") && strip_suffix(uid, ".slice")) {
    const std::size_t pod = uid.rfind("pod");
    if (pod == std::string_view::npos || (pod != 0 && uid[pod - 1] != '-')) {
      return {};
    }
    uid.remove_prefix(pod + 3);
  } else if (!(under_kubepods && strip_prefix(uid, "pod"))) {
    return {};
  }
  if (!is_pod_uid(uid)) {
    return {};
  }
  std::string text(uid);
  std::replace(text.begin(), text.end(), '_', '-');
  return text;
}

bool is_unit_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' ||
         c == '_' || c == '.' || c == '-' || c == '@' || c == '\\';
}

}  // namespace

CgroupIdentity parse_cgroup_path(std::string_view path) {
  CgroupIdentity identity;
  identity.path = std::string(path);
  const std::vector<std::string_view> parts = components(path);
  bool under_kubepods = false;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string_view part = parts[i];
    under_kubepods = under_kubepods || part == "kubepods" || part.starts_with("kubepods.") ||
                     part.starts_with("kubepods-");
    std::string_view id = runtime_container_id(part);
    // cgroupfs drivers name the container's cgroup by its bare id: /docker/ID, and
    // /kubepods/QOS/pod<uid>/ID for kubelet.
    if (id.empty() && i > 0 && is_container_id(part) &&
        (parts[i - 1] == "docker" || parts[i - 1].starts_with("pod"))) {
      id = part;
    }
    if (!id.empty()) {
      identity.container_id = std::string(id);
    }
    if (std::string uid = pod_uid_of(part, under_kubepods); !uid.empty()) {
      identity.pod_uid = std::move(uid);
    }
    if (part.ends_with(".service") || part.ends_with(".scope")) {
      identity.unit = std::string(part);
    }
  }
  return identity;
}

bool is_container_id_or_prefix(std::string_view text) {
  return (text.size() == kContainerIdLength || text.size() == kContainerIdPrefixLength) &&
         is_lower_hex(text);
}

bool is_unit_name(std::string_view text) {
  std::string_view name = text;
  if (text.size() > kMaxUnitNameLength ||
      !(strip_suffix(name, ".service") || strip_suffix(name, ".scope")) || name.empty()) {
    return false;
  }
  return std::all_of(text.begin(), text.end(), is_unit_char);
}

}  // namespace tcptrail
