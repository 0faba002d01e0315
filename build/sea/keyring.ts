/**
 * @napi-rs/keyring as the executable's bundle sees it: its addon, when the build found one for this
 * platform, loaded from the executable. Without one the import fails, and the master key falls back to
 * the key file as it does when the optional package is missing (src/store/master-key.ts).
 */
import { loadNativeAddon } from './runtime.js'

export const ADDON_ASSET = 'keyring.node'

const addon = loadNativeAddon(ADDON_ASSET) as Record<string, unknown>
export const AsyncEntry = addon.AsyncEntry
export const Entry = addon.Entry
export default addon
