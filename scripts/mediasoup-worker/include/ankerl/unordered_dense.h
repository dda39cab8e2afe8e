// Stand-in for martinus/unordered_dense (header-only, not packaged by Debian), used only by
// scripts/install-media-worker.sh's offline build of mediasoup-worker: the worker uses
// ankerl::unordered_dense::{map,set,hash} as drop-in hash containers, so the standard ones do.
// Differences that the worker does not rely on: iteration order is not insertion order, and
// integer hashes are std::hash's (identity) rather than avalanching ones.
#ifndef AURALINK_ANKERL_UNORDERED_DENSE_STANDIN_H
#define AURALINK_ANKERL_UNORDERED_DENSE_STANDIN_H

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <unordered_set>

namespace ankerl
{
	namespace unordered_dense
	{
		template<class Key, class Enable = void>
		struct hash : std::hash<Key>
		{
		};

		template<class Key, class T, class Hash = hash<Key>, class KeyEqual = std::equal_to<Key>>
		using map = std::unordered_map<Key, T, Hash, KeyEqual>;

		template<class Key, class Hash = hash<Key>, class KeyEqual = std::equal_to<Key>>
		using set = std::unordered_set<Key, Hash, KeyEqual>;
	} // namespace unordered_dense
} // namespace ankerl

#endif
